/**
 * Requests the gateway does not record: streamed through both ways, the body never looked at.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { flatHeaders, rawHeaderPairs } from '@oncely/core/node';
import { clientResponseHeaders, upstreamRequestHeaders } from './forward-headers.ts';
import { type Exchange, exchange, type UpstreamError, type UpstreamTarget } from './upstream.ts';

/** How a passthrough ended: relayed (whatever the status), or the upstream failed before its head. */
export type PassthroughResult =
  | { kind: 'relayed'; status: number }
  | { kind: 'failed'; failure: UpstreamError };

export interface PassthroughInit {
  target: UpstreamTarget;
  /** Path and query as the client sent them. */
  path: string;
  upstreamTimeoutMs: number;
}

/** Stream a request through, both ways, without looking at its body. */
export async function passthrough(
  req: IncomingMessage,
  res: ServerResponse,
  { target, path, upstreamTimeoutMs }: PassthroughInit,
): Promise<PassthroughResult> {
  // Sent again only when a kept-alive connection turned out dead before any response, and only a
  // bodyless GET, HEAD or OPTIONS. A dead connection does not prove the upstream never read the
  // request: one that acted on it and then dropped the connection (a worker killed mid-request)
  // looks the same, and RFC 9110 §9.2.2 leaves repeating a request that is not idempotent to the
  // client. PUT and DELETE are idempotent by definition, but whether the upstream honours that, and
  // what a repeat answers (a 404 for the first DELETE's 204), the gateway cannot know. A streamed
  // body is gone once sent anyway.
  const method = req.method ?? 'GET';
  const bodyless =
    req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] ?? '0') === '0';
  const repeatable = bodyless && (method === 'GET' || method === 'HEAD' || method === 'OPTIONS');
  const forward = (): Exchange => {
    const sent = exchange(target, {
      method,
      path,
      headers: upstreamRequestHeaders(req, { upstreamHost: target.host }),
      timeoutMs: upstreamTimeoutMs,
    });
    if (bodyless) sent.request.end();
    else req.pipe(sent.request);
    return sent;
  };
  let upstream = forward();
  // A client that goes away cancels what it asked for: nothing here is recorded.
  res.once('close', () => {
    if (!res.writableFinished) upstream.request.destroy();
  });
  let response: IncomingMessage;
  try {
    response = await upstream.response.catch((error: unknown) => {
      if (!repeatable || !upstream.stale(error)) throw error;
      upstream = forward();
      return upstream.response;
    });
  } catch (error) {
    return { kind: 'failed', failure: upstream.failure(error) };
  }
  res.writeHead(
    response.statusCode ?? 502,
    response.statusMessage,
    flatHeaders(clientResponseHeaders(rawHeaderPairs(response.rawHeaders), true)),
  );
  await new Promise<void>((resolve) => {
    response.pipe(res);
    // Cut off mid-body: the client sees the same broken response the upstream sent.
    response.once('error', () => {
      res.destroy();
      resolve();
    });
    res.once('close', () => {
      if (!response.complete) response.destroy();
      resolve();
    });
  });
  return { kind: 'relayed', status: response.statusCode ?? 502 };
}
