import type { ServerResponse } from 'node:http';
import type { HttpDecision } from '../http.ts';
import { clientSignal } from './client-signal.ts';

/**
 * Core's one client-disconnect policy on a `node:http` response: when the client leaves before its
 * response was sent whole, `decision.clientGone()` (the owner keeps its lease and its outcome is
 * committed, so the client's retry replays it). Nothing else is done on a disconnect: no abort, no
 * release. Returns a function that stops watching.
 * @example
 * onClientGone(res, decision);
 */
export function onClientGone(
  res: ServerResponse,
  decision: Pick<Extract<HttpDecision, { kind: 'execute' }>, 'clientGone'>,
): () => void {
  const signal = clientSignal(res);
  const gone = (): void => decision.clientGone();
  if (signal.aborted) gone();
  else signal.addEventListener('abort', gone, { once: true });
  return () => signal.removeEventListener('abort', gone);
}
