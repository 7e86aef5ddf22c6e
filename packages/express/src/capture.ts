/**
 * Capturing the response a handler sends, at the lowest level (`writeHead`, `write`, `end`), so that
 * `res.json`, `res.send`, `res.end(buffer)`, piped streams and `res.write` chunks all arrive byte-exact.
 */

import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { bodyAllowed, groupHeaders, type HeaderPairs, type HttpDecision, headerPairs } from '@oncely/core';
import { onClientGone, type ResponseHead, responseRecorder } from '@oncely/core/node';
import type { Request, Response } from 'express';

type ExecuteDecision = Extract<HttpDecision, { kind: 'execute' }>;

interface CaptureOptions {
  decision: ExecuteDecision;
  /** The engine's `maxResponseBytes`: past it no more bytes are buffered, only counted (core's recorder). */
  maxResponseBytes: number;
}

type WriteHead = ServerResponse['writeHead'];

/**
 * Express gives a middleware no hook for an error a later handler throws or passes to `next(err)`.
 * Its router (2.3 and later, Express 5) records each such error in a set on the request under this
 * registered symbol, which every copy of the router shares. Where it is missing (Express 4, older
 * routers) the error handler's response is judged by the cache policy like any other response.
 */
const ROUTER_ERRORS = Symbol.for('router.tracing.publishedErrors');

/** Returns whether an error was recorded on the request after this call. */
function errorsFrom(req: Request): () => boolean {
  const recorded = (): unknown[] => {
    const errors = (req as unknown as Record<symbol, unknown>)[ROUTER_ERRORS];
    return errors instanceof Set ? [...errors] : [];
  };
  const earlier = new Set(recorded());
  return () => recorded().some((error) => !earlier.has(error));
}
type Callback = (error?: Error | null) => void;

/**
 * Record everything the handler sends and `commit` it before the response completes: chunks go out as
 * they are written, but the final `end` is held until the store has the response, so a retry that
 * arrives right after the client saw the response replays it. `commit` or `abort` runs exactly once.
 */
export function captureResponse(req: Request, res: Response, options: CaptureOptions): void {
  const { decision, maxResponseBytes } = options;
  const recorder = responseRecorder(decision, { maxResponseBytes, method: req.method });
  let head: ResponseHead | undefined;
  let ended: Promise<void> | undefined;
  let settled = false;
  const failed = errorsFrom(req);

  const settle = (work: () => Promise<unknown>): Promise<unknown> => {
    if (settled) return Promise.resolve();
    settled = true;
    // A store failure is the engine's to report (`onEvent`); the response goes out regardless.
    return Promise.resolve()
      .then(work)
      .catch(() => {});
  };
  const record = (chunk: unknown, encoding: unknown): void => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const bytes =
      typeof chunk === 'string'
        ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        : Buffer.from(chunk as Uint8Array); // a copy: the caller may reuse its buffer after the write
    recorder.add(bytes);
  };
  const snapshot = (status: number): void => {
    head ??= { status, headers: headerPairs(res.getHeaders()) };
  };

  const fail = (error: unknown): void => {
    res.destroy(error instanceof Error ? error : undefined);
  };

  const writeHead = res.writeHead as WriteHead;
  const write = res.write;
  const end = res.end;

  res.writeHead = function (
    this: Response,
    status: number,
    reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
    headers?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ) {
    const fields = typeof reason === 'string' ? headers : reason;
    // Headers given to writeHead would bypass getHeaders(); set them first, as Node itself does once
    // any header was set: object keys replace, an array's repeated names become one multi-value field.
    if (fields) for (const [name, value] of fieldsOf(fields)) this.setHeader(name, value);
    // Before the writeHead below: a compression middleware mounted earlier adds Content-Encoding
    // there, and the body captured here is the uncompressed one.
    const first = head === undefined;
    snapshot(status);
    try {
      return Reflect.apply(writeHead, this, typeof reason === 'string' ? [status, reason] : [status]);
    } catch (error) {
      if (first) head = undefined; // Node refused the status: it is never sent, so never stored
      throw error;
    }
  } as WriteHead as Response['writeHead'];

  res.write = function (this: Response, chunk: unknown, encoding?: unknown, cb?: unknown) {
    if (ended) {
      // Written after `end`: keep Node's order (and its write-after-end error) behind the held end.
      void ended.then(() => write.call(this, chunk, encoding as BufferEncoding, cb as Callback)).catch(fail);
      return false;
    }
    record(chunk, encoding);
    return write.call(this, chunk, encoding as BufferEncoding, cb as Callback);
  } as Response['write'];

  res.end = function (this: Response, chunk?: unknown, encoding?: unknown, cb?: unknown) {
    let args = [chunk, encoding, cb] as Parameters<Response['end']>;
    if (ended) {
      void ended.then(() => end.apply(this, args)).catch(fail);
      return this;
    }
    record(chunk, encoding);
    snapshot(this.statusCode);
    // Node drops the body of a HEAD, 1xx, 204 or 304 response by itself but sends a 205's: dropped
    // here too, the first response agrees with what is stored and replayed (`bodyAllowed`).
    if (!bodyAllowed(req.method, head!.status)) args = callbackOf(args);
    // A response that error handling sent is not the handler's outcome: free the key, as for a throw.
    const outcome = failed()
      ? () => decision.abort(new Error('the handler failed'))
      : () => recorder.commit(head!);
    ended = settle(outcome).then(() => {
      end.apply(this, args);
    });
    // Node would have thrown to the handler; held back, the error can only end the response.
    ended.catch(fail);
    return this;
  } as Response['end'];

  onClientGone(res, {
    clientGone() {
      if (ended || settled) return;
      // A handler that failed after sending the head, whose connection Express then closed.
      if (failed()) {
        void settle(() => decision.abort(new Error('the response was not completed')));
        return;
      }
      // The client went away before the handler finished: core's one policy decides (the handler
      // keeps its lease and its response, when it comes, is committed for the client's retry).
      decision.clientGone();
    },
  });
}

/** `end`'s arguments without the body: only its callback, if it was given one. */
function callbackOf(args: Parameters<Response['end']>): Parameters<Response['end']> {
  const callback = (args as unknown[]).find((arg) => typeof arg === 'function');
  return (callback === undefined ? [] : [callback]) as unknown as Parameters<Response['end']>;
}

/** writeHead's header argument as [name, value] fields: an object, or a flat [name, value, ...] list. */
function fieldsOf(fields: OutgoingHttpHeaders | OutgoingHttpHeader[]): Array<[string, OutgoingHttpHeader]> {
  if (!Array.isArray(fields)) {
    return Object.entries(fields).filter(
      (entry): entry is [string, OutgoingHttpHeader] => entry[1] !== undefined,
    );
  }
  // Node also takes the older list of [name, value] pairs.
  const flat = Array.isArray(fields[0]) ? (fields as unknown as OutgoingHttpHeader[][]).flat() : fields;
  const pairs: HeaderPairs = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const value = flat[i + 1]!;
    for (const line of Array.isArray(value) ? value : [value]) pairs.push([String(flat[i]), String(line)]);
  }
  return [...groupHeaders(pairs)];
}
