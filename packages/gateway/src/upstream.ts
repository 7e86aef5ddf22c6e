/**
 * The client side of the gateway: one HTTP exchange with the upstream over node:http (or node:https),
 * on a keep-alive agent, with an inactivity timeout, and failures sorted into "unavailable" (502) and
 * "timeout" (504).
 */

import { Agent, type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { formatDuration } from './units.ts';

/** Where requests go: the upstream's origin and base path. */
export interface UpstreamTarget {
  /** The URL as configured, for messages. */
  readonly url: URL;
  /** `Host` for the upstream hop. */
  readonly host: string;
  /** Prepended to every request path; '' for an upstream at its root. */
  readonly basePath: string;
  readonly agent: Agent;
  readonly request: typeof httpRequest;
}

/**
 * Parse and check the upstream URL: http or https, no credentials, no query or fragment. A base path
 * (`http://10.0.0.5:3000/api`) is prepended to every forwarded path. Kept-alive connections are
 * closed after `idleTimeoutMs` idle (the gateway's `upstreamIdleTimeoutMs`).
 */
export function upstreamTarget(
  upstream: string | URL,
  { idleTimeoutMs }: { idleTimeoutMs: number },
): UpstreamTarget {
  let url: URL;
  try {
    url = new URL(upstream);
  } catch {
    throw new TypeError(`upstream "${String(upstream)}" is not a URL (e.g. http://127.0.0.1:3000)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`upstream must be an http:// or https:// URL, got ${url.protocol}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new TypeError('upstream must not contain credentials: the client sends its own Authorization');
  }
  if (url.search !== '' || url.hash !== '') {
    throw new TypeError('upstream must not have a query string or fragment');
  }
  const https = url.protocol === 'https:';
  // Keep-alive: a connection per request would cost a handshake per request and exhaust ports
  // under load. No socket cap: concurrency is bounded by what clients send, as without the gateway.
  // Idle sockets are dropped after idleTimeoutMs, or earlier when the upstream announces a shorter
  // `Keep-Alive: timeout` (Node's agent honours the hint only when it has a timeout of its own).
  // Closing first matters: an upstream that closes an idle connection just as a request goes out on
  // it fails that request, and a request that is not safe to repeat is then never sent again.
  const options = { keepAlive: true, timeout: idleTimeoutMs };
  const agent = https ? new HttpsAgent(options) : new Agent(options);
  return {
    url,
    host: url.host,
    basePath: url.pathname.replace(/\/+$/, ''),
    agent,
    request: https ? (httpsRequest as typeof httpRequest) : httpRequest,
  };
}

/**
 * Why the upstream exchange failed: nothing usable came back (502), or nothing came back in time
 * (504). The message is short (`ECONNREFUSED`, `it sent nothing for 60s`), for problem details and logs.
 */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  readonly kind: 'unavailable' | 'timeout';
  /**
   * A connection to the upstream was open, so the request may have reached it and been acted on;
   * false only when no connection was made (refused, DNS, connect timeout).
   */
  readonly reached: boolean;
  constructor(
    kind: 'unavailable' | 'timeout',
    message: string,
    options: { cause?: unknown; reached: boolean },
  ) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.reached = options.reached;
  }
}

export interface ExchangeInit {
  method: string;
  /** Path and query as the client sent them; the base path is prepended here. */
  path: string;
  /** Flat `[name, value, …]` list, `Host` included (Node adds none to a list). */
  headers: string[];
  /** Longest silence on the upstream socket, before the response head or between body chunks. */
  timeoutMs: number;
}

/** One exchange in progress. */
export interface Exchange {
  /** Write the body to it (or pipe into it) and end it. */
  readonly request: ClientRequest;
  /** The response, once its head arrived; rejects with an `UpstreamError` before that. */
  readonly response: Promise<IncomingMessage>;
  /** The failure of the exchange as an `UpstreamError`, for errors raised while reading the body. */
  failure(cause: unknown): UpstreamError;
  /**
   * True when the exchange failed on a reused keep-alive connection before any response. Most often
   * the upstream closed the idle connection as the request went out and never read it; but an
   * upstream that read the request, acted on it and then lost the connection (a worker killed
   * mid-request) looks exactly the same. So this alone never makes a request safe to send again:
   * only one that is safe to repeat may be (RFC 9110 §9.2.2), see the gateway's passthrough.
   */
  stale(cause: unknown): boolean;
}

/** Start a request to the upstream. */
export function exchange(target: UpstreamTarget, init: ExchangeInit): Exchange {
  let timedOut = false;
  let connected = false;
  const request = target.request({
    protocol: target.url.protocol,
    hostname: target.url.hostname.replace(/^\[|\]$/g, ''),
    port: target.url.port || undefined,
    method: init.method,
    path: `${target.basePath}${init.path}`,
    headers: init.headers,
    agent: target.agent,
    timeout: init.timeoutMs,
  });
  // A reused socket is connected already; a new one once its 'connect' fired. From then on bytes of
  // the request may have reached the upstream.
  request.once('socket', (socket) => {
    if (!socket.connecting) {
      connected = true;
      return;
    }
    socket.once('connect', () => {
      connected = true;
    });
  });
  const failure = (cause: unknown): UpstreamError => {
    if (cause instanceof UpstreamError) return cause;
    const reached = connected;
    if (timedOut) {
      const message = `it sent nothing for ${formatDuration(init.timeoutMs)}`;
      return new UpstreamError('timeout', message, { cause, reached });
    }
    const code = (cause as { code?: unknown } | null)?.code;
    const message = typeof code === 'string' ? code : 'the connection failed';
    return new UpstreamError('unavailable', message, { cause, reached });
  };
  request.on('timeout', () => {
    timedOut = true;
    request.destroy();
  });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    request.once('response', resolve);
    request.once('error', (error) => reject(failure(error)));
  });
  // After the head, failures surface on the response stream; this keeps a late request error from
  // becoming an uncaught exception.
  request.on('error', () => {});
  const stale = (cause: unknown): boolean => {
    const error = cause instanceof UpstreamError ? cause.cause : cause;
    const code = (error as { code?: unknown } | null)?.code;
    return request.reusedSocket && !timedOut && (code === 'ECONNRESET' || code === 'EPIPE');
  };
  return { request, response, failure, stale };
}
