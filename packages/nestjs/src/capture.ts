/**
 * The response side, at the lowest level both platforms share: Node's `ServerResponse` (Express's
 * `res`, Fastify's `reply.raw`). Whatever the handler returns — an object, a `StreamableFile`, a
 * stream, a response it writes itself through `@Res()` — Nest's platform ends up in `writeHead`,
 * `write` and `end`, so the bytes recorded there are the bytes the client gets.
 */

import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import {
  bodyAllowed,
  groupHeaders,
  type HeaderPairs,
  type HttpDecision,
  type HttpResponse,
  headerPairs,
} from '@oncely/core';
import { onClientGone, type ResponseHead, responseRecorder, writeResponse } from '@oncely/core/node';

type Execute = Extract<HttpDecision, { kind: 'execute' }>;
type Callback = (error?: Error | null) => void;
type WriteHead = ServerResponse['writeHead'];

/** What the interceptor can still tell a capture: the handler failed, so the key is released. */
export interface Capture {
  /** Abort the decision (release the key) unless the response was already settled; once. */
  fail(reason: unknown): Promise<void>;
}

/**
 * Record everything written to `res` and commit it before the response completes: chunks go out
 * as they are written, but the last of them is held until the store has the response, so a retry
 * that arrives right after the client saw it replays it. The last is the `end` (it carries the
 * chunked body's terminator) or, under a `Content-Length`, the write that completes the body: the
 * client has the whole response as soon as that write goes out (a piped `StreamableFile` of known
 * length). `commit` or `abort` runs exactly once; a
 * response that goes out after `fail` (the one Nest's exception filters write) is not recorded.
 */
export function captureResponse(
  method: string,
  res: ServerResponse,
  options: { decision: Execute; maxResponseBytes: number },
): Capture {
  const { decision, maxResponseBytes } = options;
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
    // Fastify hands its headers to writeHead, where getHeaders() would not see them: set them first,
    // as Node itself does once any header was set (object keys replace, repeated names add lines).
    if (fields) for (const [name, value] of fieldsOf(fields)) this.setHeader(name, value);
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
    const go = (): unknown => write.call(this, chunk, encoding as BufferEncoding, cb as Callback);
    if (held) {
      // Written after the held part: keep Node's order (and its write-after-end error) behind it.
      void held.then(go).catch(destroy);
      return true;
    }
    record(chunk, encoding);
    const length = Number(this.getHeader('content-length'));
    if (!settled && length > 0 && recorder.size >= length) {
      snapshot(this.statusCode);
      // Reported as written (true): a pipe waiting for 'drain' after a held chunk would stall.
      held = settle(() => recorder.commit(head!)).then(() => {
        go();
      });
      held.catch(destroy);
      return true;
    }
    return go() as boolean;
  } as ServerResponse['write'];

  res.end = function (this: ServerResponse, chunk?: unknown, encoding?: unknown, cb?: unknown) {
    let args = [chunk, encoding, cb] as Parameters<ServerResponse['end']>;
    if (held) {
      void held.then(() => end.apply(this, args)).catch(destroy);
      return this;
    }
    record(chunk, encoding);
    snapshot(this.statusCode);
    // Node drops the body of a HEAD, 1xx, 204 or 304 response by itself but sends a 205's: dropped
    // here too, the first response agrees with what is stored and replayed (`bodyAllowed`).
    if (!bodyAllowed(method, head!.status)) args = callbackOf(args);
    held = settle(() => recorder.commit(head!)).then(() => {
      end.apply(this, args);
    });
    // Node would have thrown to the platform; held back, the error can only end the response.
    held.catch(destroy);
    return this;
  } as ServerResponse['end'];

  onClientGone(res, {
    clientGone() {
      // The client went away before the handler finished: core's one policy decides (the handler
      // keeps its lease and its response, when it comes, is committed for the client's retry).
      if (!settled) decision.clientGone();
    },
  });

  return { fail: (reason) => settle(() => decision.abort(reason)) };
}

/**
 * Send a response Oncely decided (a replay, a problem) in place of the one Nest sends. Nest's
 * router replies after the interceptors, whatever they return; sending first would make it fail
 * on a response already sent. So the platform's reply goes ahead and, at the raw response, its head
 * and body are dropped and this one is written instead, in one write. `now` is for a handler that
 * takes `@Res()`: Nest sends nothing for it, so the response is written at once.
 *
 * Headers set on the response before the decision (by a middleware, `@Header()`, CORS) stay,
 * unless the decided response names them; those the platform added for its own reply do not.
 */
export function sendDecided(
  res: ServerResponse,
  response: HttpResponse,
  options: { before: HeaderPairs; now: boolean },
): void {
  const decided = new Set(response.headers.map(([name]) => name.toLowerCase()));
  const kept = options.before.filter(([name]) => {
    const lower = name.toLowerCase();
    return !decided.has(lower) && lower !== 'content-length' && lower !== 'transfer-encoding';
  });
  const whole: HttpResponse = { ...response, headers: [...kept, ...response.headers] };
  const send = (): void => {
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    writeResponse(res, whole);
  };
  if (options.now) {
    send();
    return;
  }

  const { writeHead, write, end } = res;
  const restore = (): void => {
    res.writeHead = writeHead;
    res.write = write;
    res.end = end;
  };
  res.writeHead = function (this: ServerResponse) {
    return this;
  } as WriteHead;
  res.write = ((_chunk: unknown, encoding?: unknown, cb?: unknown) => {
    const callback = [encoding, cb].find((arg) => typeof arg === 'function') as Callback | undefined;
    if (callback) process.nextTick(callback);
    return true;
  }) as ServerResponse['write'];
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    restore();
    send();
    const callback = args.find((arg) => typeof arg === 'function') as Callback | undefined;
    if (callback) process.nextTick(callback);
    return this;
  } as ServerResponse['end'];
}

/** `end`'s arguments without the body: only its callback, if it was given one. */
function callbackOf(args: Parameters<ServerResponse['end']>): Parameters<ServerResponse['end']> {
  const callback = (args as unknown[]).find((arg) => typeof arg === 'function');
  return (callback === undefined ? [] : [callback]) as unknown as Parameters<ServerResponse['end']>;
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
