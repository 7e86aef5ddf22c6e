/**
 * The request body the fingerprint is computed from, whether or not a body parser ran before the
 * middleware, and without taking the body away from the parsers and handlers that run after it.
 */

import { OncelyError } from '@oncely/core';
import type { Request } from 'express';

/** What `HttpRequestInfo.body` takes. */
type Body = Uint8Array | string | null;

/** The bytes this middleware read itself, kept in case a second instance sees the same request. */
const ownBytes = Symbol('oncely.requestBody');

interface WithBody {
  [ownBytes]?: Uint8Array;
  rawBody?: unknown;
  body?: unknown;
}

/**
 * In order of preference:
 * 1. `req.rawBody` when a parser's `verify` kept the raw bytes: exactly what the client sent;
 * 2. `req.body` when a parser has already consumed the stream: a Buffer or string as is, anything
 *    else (a parsed JSON or form body) as JSON text, canonicalised by the fingerprint for JSON requests;
 * 3. otherwise the stream itself, read here (up to `limit` bytes) and pushed back, so a parser or
 *    handler after the middleware reads the body as if nobody had touched it.
 */
export async function requestBody(req: Request, limit: number): Promise<Body> {
  // No body, whatever a parser made of it (express.json() turns it into {}).
  if (req.headers['content-length'] === '0') return null;
  const own = req as Request & WithBody;
  if (own[ownBytes]) return own[ownBytes];
  if (own.rawBody instanceof Uint8Array || typeof own.rawBody === 'string') return own.rawBody;
  if (req.readableDidRead || req.readableEnded || !req.readable) return parsedBody(own.body);
  const bytes = await readAndRestore(req, limit);
  own[ownBytes] = bytes;
  return bytes;
}

/**
 * The `verify` hook of Express's body parsers that keeps the raw bytes as `req.rawBody`, so the
 * fingerprint covers exactly what the client sent even when the parser runs before the middleware.
 * @example
 * app.use(express.json({ verify: keepRawBody }), idempotency(shared));
 */
export function keepRawBody(req: unknown, _res: unknown, buffer: Buffer): void {
  (req as WithBody).rawBody = buffer;
}

function parsedBody(body: unknown): Body {
  if (body === undefined || body === null) return null;
  if (body instanceof Uint8Array || typeof body === 'string') return body;
  if (holdsInexactNumber(body)) {
    // JSON.parse already rounded it: 9007199254740993 and 9007199254740992 are one double, so the
    // fingerprint could not tell two payloads apart and a retry with another amount would replay.
    // Refuse to guess: this is the server's setup to fix, not the client's request.
    throw new OncelyError(
      'ERR_ONCELY_INVALID_OPTION',
      'A body parser ran before @oncely/express without keeping the raw bytes, and the body holds a number beyond 2^53 that the parsed value no longer holds exactly. Mount idempotency() before the body parser, or pass { verify: keepRawBody } to it.',
    );
  }
  return JSON.stringify(body);
}

/** Whether a parsed value holds an integer JSON.parse may have rounded (beyond ±2^53). */
function holdsInexactNumber(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item === 'number') {
      if (Number.isInteger(item) && !Number.isSafeInteger(item)) return true;
    } else if (typeof item === 'object' && item !== null) {
      for (const child of Object.values(item)) stack.push(child);
    }
  }
  return false;
}

/**
 * Read the whole body in paused mode, then `unshift` it back. The bytes go back in the same tick as
 * the last read, before the stream can emit `end`, so the request is still readable and unfinished
 * for `express.json()` & co. (body-parser skips a request whose stream has ended).
 */
function readAndRestore(req: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  if (req.headers['transfer-encoding'] === undefined && !(declared > 0)) {
    return Promise.resolve(new Uint8Array(0)); // no body at all: nothing to read or give back
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error: Error | undefined, restore: boolean): void => {
      req.off('readable', onReadable);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (error) {
        req.resume(); // drain the rest, so the error response can still be sent on this connection
        reject(error);
        return;
      }
      const bytes = Buffer.concat(chunks);
      if (restore && bytes.byteLength > 0) req.unshift(bytes);
      resolve(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    };
    const onReadable = (): void => {
      for (let chunk = req.read(); chunk !== null; chunk = req.read()) {
        const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
        size += buffer.byteLength;
        if (size > limit) {
          done(tooLarge(limit), false);
          return;
        }
        chunks.push(buffer);
      }
      // `complete` is set before the parser pushes the end of the stream: every byte has been read.
      if (req.complete) done(undefined, true);
    };
    // Only reached when the stream ended before a `readable` saw `complete`; every byte was read here.
    const onEnd = (): void => done(undefined, false);
    const onError = (error: Error): void => done(error, false);
    const onClose = (): void => {
      if (!req.complete) done(httpError(400, 'request aborted', 'request.aborted'), false);
    };
    req.on('readable', onReadable);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function tooLarge(limit: number): Error {
  return Object.assign(httpError(413, 'request entity too large', 'entity.too.large'), { limit });
}

/** An error shaped like body-parser's (`http-errors`), so Express's error handling answers with its status. */
function httpError(status: number, message: string, type: string): Error {
  return Object.assign(new Error(message), { status, statusCode: status, expose: true, type });
}
