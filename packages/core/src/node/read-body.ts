/**
 * Reading a recorded request's body, up to a limit. A recorded request is read whole before anything
 * runs: its fingerprint covers the body. The gateway consumes the bytes (it forwards them itself); a
 * middleware (Express) gives them back to the stream, so body parsers mounted after it still read
 * the request as if nobody had touched it.
 */

import type { IncomingMessage } from 'node:http';
import { concat } from './concat.ts';

/**
 * Why a body could not be read. Shaped like body-parser's errors (`status`, `statusCode`, `type`,
 * `expose`), so a Node framework's error handler answers with the status; the gateway answers its
 * own problem for each.
 */
export abstract class BodyReadError extends Error {
  readonly status: number;
  readonly statusCode: number;
  readonly expose = true;
  readonly type: string;
  constructor(message: string, status: number, type: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
    this.statusCode = status;
    this.type = type;
  }
}

/** The body is larger than the limit: 413. */
export class BodyTooLargeError extends BodyReadError {
  override readonly name = 'BodyTooLargeError';
  readonly limit: number;
  constructor(limit: number) {
    super(`the request body is larger than ${limit} bytes`, 413, 'entity.too.large');
    this.limit = limit;
  }
}

/** The client closed the connection (or the stream failed) before its body arrived in full: 400. */
export class RequestAbortedError extends BodyReadError {
  override readonly name = 'RequestAbortedError';
  constructor(options?: { cause?: unknown }) {
    super(
      'the client closed the connection before the request body was complete',
      400,
      'request.aborted',
      options,
    );
  }
}

/** Options of {@link readBody}. */
export interface ReadBodyOptions {
  /** The most bytes read; past it the read fails with `BodyTooLargeError`. */
  limit: number;
  /**
   * Push the bytes back onto the stream once read (`unshift`), for parsers and handlers after the
   * reader; false consumes them.
   * @default false
   */
  restore?: boolean;
}

const EMPTY = new Uint8Array(0);

/**
 * Read the whole body, failing with `BodyTooLargeError` as soon as it passes `limit` bytes: at once
 * when `Content-Length` says so, else when the bytes counted so far do (a chunked upload); with
 * `RequestAbortedError` when the client leaves first. After a failure the rest of the upload is
 * read and dropped, so an error response can still go out on the connection.
 * @example
 * const bytes = await readBody(req, { limit: 1_048_576 });
 */
export function readBody(
  req: IncomingMessage,
  { limit, restore = false }: ReadBodyOptions,
): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(new BodyTooLargeError(limit));
  // Neither a length nor chunked framing: no body at all (RFC 9112 §6.3), nothing to read or give back.
  if (req.headers['transfer-encoding'] === undefined && !(declared > 0)) return Promise.resolve(EMPTY);
  // Paused mode with `readable`, not `for await`: leaving an async iterator early destroys the
  // request, and with it the socket the 413 must still be written to; and `unshift` has to happen
  // before the stream emits `end`.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error: Error | undefined, giveBack: boolean): void => {
      req.off('readable', onReadable);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (error) {
        req.resume(); // drain the rest, so the error response can still be sent on this connection
        reject(error);
        return;
      }
      // A fresh Uint8Array, never a view into Buffer's shared pool: stores may keep the bytes.
      const bytes = concat(chunks, size);
      if (giveBack && size > 0) req.unshift(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      resolve(bytes);
    };
    const onReadable = (): void => {
      for (let chunk = req.read(); chunk !== null; chunk = req.read()) {
        const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
        size += buffer.byteLength;
        if (size > limit) {
          done(new BodyTooLargeError(limit), false);
          return;
        }
        chunks.push(buffer);
      }
      // `complete` is set before the parser pushes the end of the stream: every byte has been read,
      // and the stream has not ended yet, so the bytes can still go back in front of it.
      if (restore && req.complete) done(undefined, true);
    };
    // Consuming, the read ends here. Restoring, only when the stream ended before a `readable` saw
    // `complete`: every byte was read, but an ended stream takes nothing back.
    const onEnd = (): void => done(undefined, false);
    const onError = (cause: Error): void => done(new RequestAbortedError({ cause }), false);
    const onClose = (): void => {
      if (!req.complete) done(new RequestAbortedError(), false);
    };
    req.on('readable', onReadable);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
