import type { ServerResponse } from 'node:http';

/**
 * An `AbortSignal` that aborts when the client goes away before its response was sent whole: the
 * `signal` of `HttpRequestInfo`, so a request waiting for a duplicate stops waiting (and asking the
 * store) as soon as nobody is left to hear the answer.
 * @example
 * const decision = await http.handle({ ...request, signal: clientSignal(res) });
 */
export function clientSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  const onClose = (): void => {
    if (!res.writableFinished) controller.abort(new Error('the client went away'));
  };
  // The client may have left while an earlier middleware ran: `close` has then been emitted already.
  if (res.destroyed) onClose();
  else res.once('close', onClose);
  return controller.signal;
}
