/**
 * Streaming an upstream response to the client as it comes, for what the gateway does not hold
 * whole (a recorded response past `maxResponseBytes`). A response it has whole goes out through
 * core's `writeResponse`, in one write.
 */

import type { ServerResponse } from 'node:http';
import type { HeaderPairs } from '@oncely/core';
import { flatHeaders } from '@oncely/core/node';
import { clientResponseHeaders } from './forward-headers.ts';

/**
 * The head of an upstream response: its status, reason and end-to-end fields (`Set-Cookie` included:
 * the first client gets its session). `Content-Length` is left out: the body is re-framed as chunked.
 */
export function writeStreamHead(
  res: ServerResponse,
  status: number,
  message: string | undefined,
  pairs: HeaderPairs,
): void {
  if (res.destroyed) return;
  const flat = flatHeaders(clientResponseHeaders(pairs, false));
  if (message) res.writeHead(status, message, flat);
  else res.writeHead(status, flat);
}

/** Write with backpressure; a client that left is skipped (the upstream is still read to its end). */
export function write(res: ServerResponse, chunk: Uint8Array): Promise<void> {
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
