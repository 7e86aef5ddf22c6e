/**
 * Buffering a recorded request's body, up to a limit. A recorded request must be read whole before
 * anything runs: its fingerprint covers the body, and the upstream gets it in one piece.
 */

import type { IncomingMessage } from 'node:http';
import { concat } from './send-response.ts';

/** The body is larger than the limit: answered with 413 before the store or the upstream see it. */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
  readonly limit: number;
  constructor(limit: number) {
    super(`the request body is larger than ${limit} bytes`);
    this.limit = limit;
  }
}

/** The client closed the connection before its body arrived in full. */
export class RequestAbortedError extends Error {
  override readonly name = 'RequestAbortedError';
  constructor() {
    super('the client closed the connection before the request body was complete');
  }
}

/**
 * Read the whole body, failing with `BodyTooLargeError` as soon as it passes `limit` bytes: at once
 * when `Content-Length` says so, else when the bytes counted so far do (a chunked upload).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(new BodyTooLargeError(limit));
  // Events, not `for await`: leaving an async iterator early destroys the request, and with it the
  // socket the 413 must still be written to.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error?: Error): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (error) {
        reject(error);
        return;
      }
      // A fresh Uint8Array, not a view into Buffer's shared pool: the bytes outlive this request.
      resolve(concat(chunks, size));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (size > limit) {
        done(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => done();
    const onError = (): void => done(new RequestAbortedError());
    const onClose = (): void => {
      if (!req.complete) done(new RequestAbortedError());
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
