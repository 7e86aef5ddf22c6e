/**
 * Capturing the response a handler sends, at the lowest level (`writeHead`, `write`, `end`), so that
 * `res.json`, `res.send`, `res.end(buffer)`, piped streams and `res.write` chunks all arrive byte-exact.
 */

import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { HttpDecision, HttpResponse } from '@oncely/core';
import type { Request, Response } from 'express';

type ExecuteDecision = Extract<HttpDecision, { kind: 'execute' }>;

interface CaptureOptions {
  decision: ExecuteDecision;
  /** The engine's `maxResponseBytes`: past it no more bytes are buffered, only counted. */
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
  const chunks: Buffer[] = [];
  let size = 0;
  let head: { status: number; headers: Array<[string, string]> } | undefined;
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
    size += bytes.byteLength;
    if (size <= maxResponseBytes) chunks.push(bytes);
  };
  const snapshot = (status: number): void => {
    head ??= { status, headers: headerPairs(res) };
  };
  /** Commit what the handler sent; a body past the limit was never buffered whole. */
  const commitCaptured = (): Promise<unknown> => {
    const { status, headers } = head!;
    // Node sends no body for these, whatever the handler wrote; nor does anyone for HEAD.
    const bodyless = req.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    if (bodyless) return decision.commit({ status, headers, body: new Uint8Array(0) });
    if (size > maxResponseBytes) return decision.commitTooLarge({ status, headers });
    return decision.commit({ status, headers, body: concat(chunks, size) });
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
    const args = [chunk, encoding, cb] as Parameters<Response['end']>;
    if (ended) {
      void ended.then(() => end.apply(this, args)).catch(fail);
      return this;
    }
    record(chunk, encoding);
    snapshot(this.statusCode);
    // A response that error handling sent is not the handler's outcome: free the key, as for a throw.
    const outcome = failed() ? () => decision.abort(new Error('the handler failed')) : commitCaptured;
    ended = settle(outcome).then(() => {
      end.apply(this, args);
    });
    // Node would have thrown to the handler; held back, the error can only end the response.
    ended.catch(fail);
    return this;
  } as Response['end'];

  const onClose = (): void => {
    if (ended || settled) return;
    const abort = (): void => {
      void settle(() => decision.abort(new Error('the response was not completed')));
    };
    // A handler that failed after sending the head, whose connection Express then closed.
    if (failed()) {
      abort();
      return;
    }
    // The client went away before the handler finished: core's one policy decides (the handler keeps
    // its lease and its response, when it comes, is committed for the client's retry).
    decision.clientGone();
  };
  // The client may have left while the store was deciding: then `close` has already been emitted.
  if (res.destroyed) onClose();
  else res.once('close', onClose);
}

/**
 * Send a replay or a problem as it is: status, every header line (repeated names kept apart), bytes.
 * Node's own setters, not `res.set`, which would add a charset to the stored Content-Type.
 */
export function sendResponse(res: Response, response: HttpResponse): void {
  res.statusCode = response.status;
  const fields = new Map<string, string[]>();
  for (const [name, value] of response.headers) {
    const values = fields.get(name);
    if (values) values.push(value);
    else fields.set(name, [value]);
  }
  for (const [name, values] of fields) res.setHeader(name, values.length === 1 ? values[0]! : values);
  res.end(Buffer.from(response.body));
}

/** The response's headers as pairs, lower-case names, one pair per value (`set-cookie` arrays too). */
function headerPairs(res: ServerResponse): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const name of res.getHeaderNames()) {
    const value = res.getHeader(name);
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) pairs.push([name, String(one)]);
  }
  return pairs;
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
  const grouped = new Map<string, string[]>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = String(flat[i]).toLowerCase();
    const value = flat[i + 1]!;
    const values = grouped.get(name) ?? [];
    values.push(...(Array.isArray(value) ? value : [String(value)]));
    grouped.set(name, values);
  }
  return [...grouped];
}

function concat(chunks: readonly Buffer[], size: number): Uint8Array {
  // A fresh Uint8Array, never a view into Buffer's shared pool: stores may keep it.
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
