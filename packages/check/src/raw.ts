/**
 * HTTP/1.1 over a bare socket, for what an HTTP client refuses to send: two header lines of one
 * field, header bytes outside ASCII, and a request whose client walks away before the answer.
 * Always to the audited URL's own host and port.
 */

import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Exchange } from './exchange.ts';

export interface RawRequest {
  label: string;
  method: string;
  url: URL;
  /** Header lines after the request line and Host, as bytes may be anything but CR and LF. */
  lines: readonly string[];
  body: Buffer;
  key?: string | undefined;
  timeoutMs: number;
}

function open(url: URL): Socket {
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  // The hostname of a URL keeps IPv6 brackets; sockets want the bare address.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return url.protocol === 'https:'
    ? tlsConnect({ host, port, servername: host, ALPNProtocols: ['http/1.1'] })
    : netConnect({ host, port });
}

/** The request's bytes: UTF-8, so a non-ASCII key goes out as the bytes a client would send. */
function bytes(request: RawRequest, close: boolean): Buffer {
  const head = [
    `${request.method} ${request.url.pathname}${request.url.search} HTTP/1.1`,
    `Host: ${request.url.host}`,
    ...request.lines,
    `Content-Length: ${request.body.byteLength}`,
    ...(close ? ['Connection: close'] : []),
  ].join('\r\n');
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'utf8'), request.body]);
}

/** Send one request on its own connection and read the answer until the server closes it. */
export function rawExchange(request: RawRequest): Promise<Exchange> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = open(request.url);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const parsed = parseResponse(Buffer.concat(chunks));
      resolve({
        label: request.label,
        key: request.key,
        status: parsed?.status ?? 0,
        ms: performance.now() - started,
        headers: parsed?.headers ?? [],
        body: parsed?.body ?? Buffer.alloc(0),
        ...(parsed ? {} : { error: error ?? 'the connection closed without a response' }),
      });
    };
    const timer = setTimeout(() => finish(`no response within ${request.timeoutMs} ms`), request.timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', (error) => finish(error.message));
    socket.once('close', () => finish());
    socket.write(bytes(request, true));
  });
}

/** A request whose client goes away: sent whole, then the connection is destroyed by `abandon()`. */
export interface AbandonedRequest {
  /** Destroy the connection; resolves true if any response byte had arrived before. */
  abandon(): boolean;
}

export function rawOpen(request: RawRequest): AbandonedRequest {
  const socket = open(request.url);
  let answered = false;
  socket.on('data', () => {
    answered = true;
  });
  socket.on('error', () => {}); // a reset after destroy() is expected
  socket.write(bytes(request, false));
  return {
    abandon: () => {
      socket.destroy();
      return answered;
    },
  };
}

/** Status, header lines and body of a whole HTTP/1.1 response (interim 1xx responses skipped). */
export function parseResponse(
  data: Buffer,
): { status: number; headers: Array<[string, string]>; body: Buffer } | undefined {
  let rest = data;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const [statusLine = '', ...lines] = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? Number.NaN);
    if (Number.isNaN(status)) return undefined;
    rest = rest.subarray(end + 4);
    if (status >= 100 && status < 200) continue;
    const headers = lines.map((line): [string, string] => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
    });
    const find = (name: string) => headers.find(([n]) => n === name)?.[1];
    let body = rest;
    if (/\bchunked\b/i.test(find('transfer-encoding') ?? '')) body = dechunk(rest);
    else if (find('content-length') !== undefined) body = rest.subarray(0, Number(find('content-length')));
    return { status, headers, body };
  }
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
