/**
 * One request and what came back, as the cases look at it: the status, the header lines in order,
 * the body bytes and the time it took. Sent with node:http (not fetch) to see the header lines as
 * they arrived, and never following a redirect: the auditor talks to the audited origin only.
 */

import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** A response body past this many bytes is cut (and marked): the auditor compares, it does not download. */
export const MAX_BODY_BYTES = 1024 * 1024;

export interface Exchange {
  /** What the request was in its case: `first`, `retry`, `duplicate 7`. */
  label: string;
  /** The Idempotency-Key sent, as the header value (none: no key). */
  key?: string | undefined;
  /** 0 when no response came (see `error`). */
  status: number;
  /** From sending the request to the last body byte. */
  ms: number;
  /** Header lines as received: lower-case names, in order, repeated names kept. */
  headers: Array<[string, string]>;
  body: Buffer;
  /** The body was longer than {@link MAX_BODY_BYTES} and was cut. */
  truncated?: boolean;
  /** Why there is no response: a timeout, a reset, a refused connection. */
  error?: string;
}

export interface OutgoingRequest {
  label: string;
  method: string;
  url: URL;
  headers: ReadonlyArray<readonly [string, string]>;
  body: Buffer;
  key?: string | undefined;
  timeoutMs: number;
}

/** The value of the first header line named `name` (lower case), if any. */
export function header(exchange: Pick<Exchange, 'headers'>, name: string): string | undefined {
  return exchange.headers.find(([n]) => n === name)?.[1];
}

/**
 * Sends requests, as many at once as asked, each on a connection of its own. No kept-alive
 * connections on purpose: a POST sent on a connection the server was closing gets no response, and
 * the audit would read that reset as the API's doing.
 */
export class Wire {
  readonly #http = new HttpAgent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  readonly #https = new HttpsAgent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  /** Requests sent so far (the report's count, and what the budget bounds). */
  sent = 0;

  send(outgoing: OutgoingRequest): Promise<Exchange> {
    this.sent++;
    const started = performance.now();
    const https = outgoing.url.protocol === 'https:';
    const headers: Record<string, string> = {};
    for (const [name, value] of outgoing.headers) {
      const lower = name.toLowerCase();
      headers[lower] = headers[lower] === undefined ? value : `${headers[lower]}, ${value}`;
    }
    headers['content-length'] = String(outgoing.body.byteLength);
    const base = { label: outgoing.label, key: outgoing.key };
    return new Promise((resolve) => {
      const request = (https ? httpsRequest : httpRequest)(outgoing.url, {
        method: outgoing.method,
        headers,
        agent: https ? this.#https : this.#http,
        signal: AbortSignal.timeout(outgoing.timeoutMs),
      });
      const fail = (error: Error): void => {
        const timedOut = error.name === 'AbortError' || error.name === 'TimeoutError';
        resolve({
          ...base,
          status: 0,
          ms: performance.now() - started,
          headers: [],
          body: Buffer.alloc(0),
          error: timedOut ? `no response within ${outgoing.timeoutMs} ms` : error.message,
        });
      };
      request.once('error', fail);
      request.once('response', (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        let truncated = false;
        response.on('data', (chunk: Buffer) => {
          if (size >= MAX_BODY_BYTES) {
            truncated = true;
            return;
          }
          chunks.push(chunk);
          size += chunk.byteLength;
        });
        response.once('error', fail);
        response.once('end', () => {
          let body = Buffer.concat(chunks);
          if (body.byteLength > MAX_BODY_BYTES) {
            body = body.subarray(0, MAX_BODY_BYTES);
            truncated = true;
          }
          resolve({
            ...base,
            status: response.statusCode ?? 0,
            ms: performance.now() - started,
            headers: pairs(response.rawHeaders),
            body,
            ...(truncated ? { truncated } : {}),
          });
        });
      });
      request.end(outgoing.body);
    });
  }

  /** Close any connection still open. */
  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }
}

/** `rawHeaders` (name, value, name, value...) as pairs with lower-case names. */
export function pairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}
