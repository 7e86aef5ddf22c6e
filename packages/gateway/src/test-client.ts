/** Test client helpers: requests over node:http (which can send the header fields fetch forbids). */

import { randomBytes } from 'node:crypto';
import { request } from 'node:http';

export interface RawReply {
  status: number;
  /** Response header pairs as received. */
  headers: Array<[string, string]>;
  body: Buffer;
  header(name: string): string | undefined;
  json(): Record<string, unknown>;
}

/** One request over a fresh connection; `body` is sent with Content-Length unless `chunks` is given. */
export function send(
  base: string,
  path: string,
  init: {
    method?: string;
    headers?: Record<string, string> | Array<[string, string]>;
    body?: string | Uint8Array;
    /** Sent one after another without Content-Length (chunked). */
    chunks?: ReadonlyArray<string | Uint8Array>;
  } = {},
): Promise<RawReply> {
  const url = new URL(path, base);
  const headers = Array.isArray(init.headers) ? init.headers.flat() : (init.headers ?? {});
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const pairs: Array<[string, string]> = [];
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
          pairs.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: pairs,
          body,
          header: (name) => pairs.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1],
          json: () => JSON.parse(body.toString()) as Record<string, unknown>,
        });
      });
    });
    req.on('error', reject);
    if (init.chunks) {
      for (const chunk of init.chunks) req.write(chunk);
      req.end();
    } else {
      req.end(init.body);
    }
  });
}

/** A POST with a JSON body and an Idempotency-Key. */
export function post(
  base: string,
  path: string,
  key: string | null,
  body: string | Uint8Array = '{"amount":100}',
  headers: Record<string, string> = {},
): Promise<RawReply> {
  return send(base, path, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(key === null ? {} : { 'idempotency-key': key }),
      ...headers,
    },
    body,
  });
}

export const newKey = (): string => `key-${randomBytes(8).toString('hex')}`;
