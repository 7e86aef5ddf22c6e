/**
 * Which header fields cross the gateway. A proxy must not forward the fields that describe one
 * connection (RFC 9110 §7.6.1): `Connection` and every field it names, `Keep-Alive`, `Proxy-*`, `TE`,
 * `Trailer`, `Transfer-Encoding`, `Upgrade`. Each hop frames its own message, so Node's client and
 * server recompute `Transfer-Encoding` on their side.
 */

import type { IncomingMessage } from 'node:http';
import { connectionOptions, type HeaderPairs, HOP_BY_HOP } from '@oncely/core';
import { rawHeaderPairs } from '@oncely/core/node';

/**
 * `Oncely-Release`: an upstream marks a response that is not an outcome to keep (its error
 * handler's answer to an exception, say); the gateway frees the key instead of storing it. Consumed
 * by the gateway, never passed on.
 */
export const RELEASE_HEADER = 'oncely-release';

const NOTHING: ReadonlySet<string> = new Set();

/** The pairs minus hop-by-hop fields, the fields `Connection` names, and any name in `drop` (lower case). */
export function endToEnd(pairs: HeaderPairs, drop: ReadonlySet<string> = NOTHING): HeaderPairs {
  const named = connectionOptions(pairs);
  return pairs.filter(([name]) => {
    const lower = name.toLowerCase();
    return !HOP_BY_HOP.has(lower) && !lower.startsWith('proxy-') && !named.has(lower) && !drop.has(lower);
  });
}

/** Request fields the gateway sets itself for the upstream hop. */
const REPLACED_ON_REQUEST = new Set([
  'host',
  'content-length',
  // The gateway answered (or buffered) the client's body already; the upstream's 100 would go nowhere.
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
]);

export interface UpstreamHeadOptions {
  /** `host[:port]` of the upstream, sent as `Host` so name-based virtual hosts there keep working. */
  upstreamHost: string;
  /** The body length when the gateway buffered it; `undefined` when the body is streamed through. */
  contentLength?: number | undefined;
}

/**
 * The header list sent upstream: end-to-end fields as received (`Idempotency-Key` included, so the
 * upstream can dedupe its own downstream calls), `Host` of the upstream, and `X-Forwarded-*`.
 * `X-Forwarded-For` is appended to; `X-Forwarded-Proto` and `-Host` are kept when a proxy in front of
 * the gateway set them (it saw the client's scheme and host), else set from this hop.
 */
export function upstreamRequestHeaders(req: IncomingMessage, options: UpstreamHeadOptions): string[] {
  const received = rawHeaderPairs(req.rawHeaders);
  const out: string[] = ['Host', options.upstreamHost];
  for (const [name, value] of endToEnd(received, REPLACED_ON_REQUEST)) out.push(name, value);

  const forwardedFor = req.headers['x-forwarded-for'];
  const client = req.socket.remoteAddress ?? '';
  out.push('X-Forwarded-For', forwardedFor ? `${forwardedFor}, ${client}` : client);
  const proto = req.headers['x-forwarded-proto'];
  out.push('X-Forwarded-Proto', typeof proto === 'string' && proto !== '' ? proto : 'http');
  const host = req.headers['x-forwarded-host'] ?? req.headers.host;
  if (typeof host === 'string' && host !== '') out.push('X-Forwarded-Host', host);

  if (options.contentLength !== undefined) {
    out.push('Content-Length', String(options.contentLength));
  } else if (req.headers['content-length'] !== undefined) {
    out.push('Content-Length', req.headers['content-length']);
  } else if (req.headers['transfer-encoding'] !== undefined) {
    // A streamed body without a length: re-frame it as chunked on our hop. Node's client would not
    // do it by itself for methods such as GET or DELETE, and would send the bytes unframed.
    out.push('Transfer-Encoding', 'chunked');
  }
  return out;
}

/**
 * The response fields a client gets: end-to-end fields as the upstream sent them, minus
 * `Oncely-Release`, and minus `Content-Length` when the gateway re-frames the body itself.
 */
export function clientResponseHeaders(pairs: HeaderPairs, keepContentLength: boolean): HeaderPairs {
  const drop = new Set([RELEASE_HEADER]);
  if (!keepContentLength) drop.add('content-length');
  return endToEnd(pairs, drop);
}
