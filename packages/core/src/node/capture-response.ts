/**
 * Capturing the response a handler sends on a `node:http` response, at the lowest level
 * (`writeHead`, `write`, `end`), so that whatever a framework builds on them (`res.json`, a piped
 * stream, `res.write` chunks, Fastify's `reply.raw`) arrives byte-exact, and committing it before
 * the client has the end of it.
 */

import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { HttpDecision } from '../http.ts';
import { bodyAllowed, groupHeaders, type HeaderPairs, headerPairs } from '../http-rules.ts';
import { onClientGone } from './client-gone.ts';
import { type ResponseHead, responseRecorder } from './response-recorder.ts';

type Execute = Extract<HttpDecision, { kind: 'execute' }>;
type Callback = (error?: Error | null) => void;
type WriteHead = ServerResponse['writeHead'];
type End = ServerResponse['end'];

/** Options of {@link captureResponse}. */
export interface CaptureResponseOptions {
  /** The execute decision whose response this is: committed, or aborted, exactly once. */
  decision: Execute;
  /** The engine's `maxResponseBytes`: past it no more bytes are kept, only counted (`responseRecorder`). */
  maxResponseBytes: number;
  /** The request's method: a response to `HEAD` is stored and sent without a body (`bodyAllowed`). */
  method: string | undefined;
  /**
   * Whether the response is an error handler's rather than the handler's outcome (Express's router
   * records the errors it handles). Asked when the response completes, and when the client leaves
   * before it does: when true the decision is aborted (the key freed, as for a throw), not committed.
   */
  failed?: () => boolean;
}

/** What an adapter can still tell a capture. */
export interface ResponseCapture {
  /**
   * The handler failed: abort the decision (release the key) unless the response was already
   * settled; once. What is written after it (an exception filter's response) is not recorded.
   */
  fail(reason: unknown): Promise<void>;
}

/**
 * Record everything written to `res` and commit it before the response completes: chunks go out as
 * they are written, but the last of them is held until the store has the response, so a retry that
 * arrives right after the client saw it replays it. The last is the `end` (it carries a chunked
 * body's terminator) or, under a `Content-Length`, the write that completes the body: the client
 * has the whole response as soon as that write goes out (a piped body of known length). Headers
 * given to `writeHead` are set on `res` first, so the head recorded is the head sent. A client that
 * leaves first: core's one policy (`onClientGone`).
 * @example
 * const capture = captureResponse(res, { decision, maxResponseBytes, method: req.method });
 * handler(req, res).catch((error) => capture.fail(error));
 */
export function captureResponse(res: ServerResponse, options: CaptureResponseOptions): ResponseCapture {
  const { decision, maxResponseBytes, method, failed = () => false } = options;
  const recorder = responseRecorder(decision, { maxResponseBytes, method });
  let head: ResponseHead | undefined;
  /** Set once the response is complete as far as the client can tell: what follows waits for it. */
  let held: Promise<void> | undefined;
  let settled = false;

  const settle = (work: () => Promise<unknown>): Promise<void> => {
    if (settled) return Promise.resolve();
    settled = true;
    // A store failure is the engine's to report (`onEvent`); the response goes out regardless.
    return Promise.resolve()
      .then(work)
      .then(
        () => {},
        () => {},
      );
  };
  const record = (chunk: unknown, encoding: unknown): void => {
    if (settled || chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const bytes =
      typeof chunk === 'string'
        ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        : Buffer.from(chunk as Uint8Array); // a copy: the caller may reuse its buffer after the write
    recorder.add(bytes);
  };
  const snapshot = (status: number): void => {
    head ??= { status, headers: headerPairs(res.getHeaders()) };
  };
  /** Hold what `go` sends until the response is settled: committed, or aborted if it failed. */
  const hold = (go: () => void): void => {
    snapshot(res.statusCode);
    const outcome = failed()
      ? () => decision.abort(new Error('the handler failed'))
      : () => recorder.commit(head!);
    held = settle(outcome).then(go);
    // Node would have thrown to the caller; held back, the error can only end the response.
    held.catch(destroy);
  };
  const destroy = (error: unknown): void => {
    res.destroy(error instanceof Error ? error : undefined);
  };

  const writeHead = res.writeHead as WriteHead;
  const write = res.write;
  const end = res.end;

  res.writeHead = function (
    this: ServerResponse,
    status: number,
    reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
    headers?: OutgoingHttpHeaders | OutgoingHttpHeader[],
  ) {
    const fields = typeof reason === 'string' ? headers : reason;
    // Headers given to writeHead would bypass getHeaders(): set them first, as Node itself does once
    // any header was set (object keys replace, an array's repeated names become one multi-value field).
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
  } as WriteHead;

  res.write = function (this: ServerResponse, chunk: unknown, encoding?: unknown, cb?: unknown) {
    const go = (): boolean => write.call(this, chunk, encoding as BufferEncoding, cb as Callback);
    if (held) {
      // Written after the held part: keep Node's order (and its write-after-end error) behind it.
      void held.then(go).catch(destroy);
      return true;
    }
    record(chunk, encoding);
    const length = Number(this.getHeader('content-length'));
    if (!settled && length > 0 && recorder.size >= length) {
      // Reported as written (true): a pipe waiting for 'drain' after a held chunk would stall.
      hold(() => {
        go();
      });
      return true;
    }
    return go();
  } as ServerResponse['write'];

  res.end = function (this: ServerResponse, chunk?: unknown, encoding?: unknown, cb?: unknown) {
    let args = [chunk, encoding, cb] as Parameters<End>;
    if (held) {
      void held.then(() => end.apply(this, args)).catch(destroy);
      return this;
    }
    record(chunk, encoding);
    snapshot(this.statusCode);
    // Node drops the body of a HEAD, 1xx, 204 or 304 response by itself but sends a 205's: dropped
    // here too, the first response agrees with what is stored and replayed (`bodyAllowed`).
    if (!bodyAllowed(method, head!.status)) args = callbackOf(args);
    hold(() => {
      end.apply(this, args);
    });
    return this;
  } as End;

  onClientGone(res, {
    clientGone() {
      if (settled) return;
      // A handler that failed after sending the head, whose connection its framework then closed.
      if (failed()) {
        void settle(() => decision.abort(new Error('the response was not completed')));
        return;
      }
      // The client went away before the handler finished: core's one policy decides (the handler
      // keeps its lease and its response, when it comes, is committed for the client's retry).
      decision.clientGone();
    },
  });

  return { fail: (reason) => settle(() => decision.abort(reason)) };
}

/** `end`'s arguments without the body: only its callback, if it was given one. */
function callbackOf(args: Parameters<End>): Parameters<End> {
  const callback = (args as unknown[]).find((arg) => typeof arg === 'function');
  return (callback === undefined ? [] : [callback]) as unknown as Parameters<End>;
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
