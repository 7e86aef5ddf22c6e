/**
 * Writing responses to the client: a response the gateway has whole (a replay, a problem, a first
 * response read to its end), and one streamed as it comes.
 */

import type { ServerResponse } from 'node:http';
import type { HttpResponse } from '@oncely/core';
import { clientResponseHeaders, groupHeaders, type HeaderPairs } from './forward-headers.ts';

/** A replay, a problem or an admin answer: status, every header line (repeated names apart), bytes. */
export function send(res: ServerResponse, response: HttpResponse): void {
  if (res.destroyed) return;
  res.statusCode = response.status;
  setHeaders(res, response.headers);
  res.end(response.body);
}

/**
 * The head of an upstream response: its status, reason and end-to-end fields (`Set-Cookie` included:
 * the first client gets its session). `Content-Length` is left to Node, which frames what is written.
 */
export function writeHead(
  res: ServerResponse,
  status: number,
  message: string | undefined,
  pairs: HeaderPairs,
): void {
  if (res.destroyed) return;
  res.statusCode = status;
  if (message) res.statusMessage = message;
  setHeaders(res, clientResponseHeaders(pairs, false));
}

/** Write with backpressure; a client that left is skipped (the upstream is still read to its end). */
export function write(res: ServerResponse, chunk: Buffer): Promise<void> {
  if (res.destroyed || res.write(chunk)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Chunks as one fresh Uint8Array, never a view into Buffer's shared pool: stores may keep it. */
export function concat(chunks: readonly Buffer[], size: number): Uint8Array {
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

// setHeader with a list sends one line per value, so repeated names (Set-Cookie) stay apart.
function setHeaders(res: ServerResponse, pairs: HeaderPairs): void {
  for (const [name, values] of groupHeaders(pairs)) {
    res.setHeader(name, values.length === 1 ? values[0]! : values);
  }
}
