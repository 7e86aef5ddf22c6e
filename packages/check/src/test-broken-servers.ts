/**
 * Idempotency layers with the faults the peers shipped, each otherwise correct (keys validated and
 * required, fingerprints compared, replays marked), so an audit fails exactly where the fault is:
 *
 * | fault | what it does | the peer |
 * |---|---|---|
 * | `set-without-nx` | checks for the key, then takes it with a plain SET: duplicates that check at once all run | express-idempotency's plain `SET` |
 * | `lock-ttl-is-retention` | never releases the lock of a failed run: it lives as long as a replay would | express-idempotency #32 |
 * | `no-fingerprint` | replays whatever the key stored, whatever the payload | replay by key alone |
 * | `empty-body-rerun` | a stored response with an empty body counts as nothing stored: a 204 runs again | node-idempotency |
 *
 * `POST /things` creates a thing after `latencyMs` (201 `{id}`, or 204 for `empty-body-rerun`);
 * `{"fail": true}` makes the handler throw (500). `GET /things/count` answers `{count}`.
 */

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type Fault = 'set-without-nx' | 'lock-ttl-is-retention' | 'no-fingerprint' | 'empty-body-rerun';

interface Stored {
  status: number;
  type: string | undefined;
  body: Buffer;
}

type Entry =
  | { state: 'in_progress'; fingerprint: string }
  | ({ state: 'done'; fingerprint: string } & Stored);

/**
 * A key-value store a round trip away, as Redis is: every call lands `roundTripMs` later. Between a
 * GET that finds nothing and the SET that follows, every duplicate that arrives also finds nothing.
 */
class RemoteMap {
  readonly #map = new Map<string, Entry>();
  readonly #ms: number;
  constructor(roundTripMs: number) {
    this.#ms = roundTripMs;
  }
  async get(key: string): Promise<Entry | undefined> {
    await sleep(this.#ms);
    return this.#map.get(key);
  }
  async set(key: string, entry: Entry): Promise<void> {
    await sleep(this.#ms);
    this.#map.set(key, entry);
  }
  /** SET NX: atomic on the store's side. */
  async setIfAbsent(key: string, entry: Entry): Promise<boolean> {
    await sleep(this.#ms);
    if (this.#map.has(key)) return false;
    this.#map.set(key, entry);
    return true;
  }
  async delete(key: string): Promise<void> {
    await sleep(this.#ms);
    this.#map.delete(key);
  }
}

export interface BrokenServer {
  url: string;
  /** Things created so far. */
  created: () => number;
  close: () => Promise<void>;
}

export interface BrokenServerOptions {
  /** How long the handler takes. @default 50 */
  latencyMs?: number;
  /** Each store call's round trip. @default 10 */
  roundTripMs?: number;
}

export async function startBrokenServer(
  fault: Fault,
  { latencyMs = 50, roundTripMs = 10 }: BrokenServerOptions = {},
): Promise<BrokenServer> {
  const store = new RemoteMap(roundTripMs);
  let created = 0;

  const send = (res: ServerResponse, response: Stored, replayed = false): void => {
    const headers: Record<string, string> = {};
    if (response.type) headers['content-type'] = response.type;
    if (replayed) headers['idempotent-replayed'] = 'true';
    res.writeHead(response.status, headers);
    res.end(response.body);
  };
  const problem = (res: ServerResponse, status: number, title: string): void =>
    send(res, {
      status,
      type: 'application/problem+json',
      body: Buffer.from(JSON.stringify({ status, title })),
    });

  /** The route's own work; throws for `{"fail": true}`. */
  async function handler(body: Buffer): Promise<Stored> {
    await sleep(latencyMs);
    const input = JSON.parse(body.toString() || '{}') as { fail?: boolean };
    if (input.fail) throw new Error('the charge failed');
    created++;
    if (fault === 'empty-body-rerun') return { status: 204, type: undefined, body: Buffer.alloc(0) };
    return {
      status: 201,
      type: 'application/json',
      body: Buffer.from(JSON.stringify({ id: `thing_${created}` })),
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://broken');
    if (req.method === 'GET' && url.pathname === '/things/count') {
      return send(res, {
        status: 200,
        type: 'application/json',
        body: Buffer.from(JSON.stringify({ count: created })),
      });
    }
    if (req.method !== 'POST' || url.pathname !== '/things') return problem(res, 404, 'Not Found');

    const lines: string[] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i]!.toLowerCase() === 'idempotency-key') lines.push(req.rawHeaders[i + 1]!);
    }
    if (lines.length === 0) return problem(res, 400, 'Idempotency-Key is missing');
    const key = lines[0]!;
    if (lines.length > 1 || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
      return problem(res, 400, 'Idempotency-Key is invalid');
    }
    const fingerprint = createHash('sha256').update(body).digest('hex');
    const mismatch = (entry: Entry): boolean =>
      fault !== 'no-fingerprint' && entry.fingerprint !== fingerprint;

    const existing = await store.get(key);
    let rerun = false;
    if (existing) {
      if (mismatch(existing)) return problem(res, 422, 'Idempotency-Key is already used');
      if (existing.state === 'in_progress')
        return problem(res, 409, 'A request is outstanding for this Idempotency-Key');
      if (fault === 'empty-body-rerun' && existing.body.byteLength === 0) rerun = true;
      else return send(res, existing, true);
    }
    const lock: Entry = { state: 'in_progress', fingerprint };
    if (fault === 'set-without-nx' || rerun) await store.set(key, lock);
    else if (!(await store.setIfAbsent(key, lock))) {
      return problem(res, 409, 'A request is outstanding for this Idempotency-Key');
    }
    let response: Stored;
    try {
      response = await handler(body);
    } catch {
      // The lock is released so a retry can run, except where the lock's TTL is the retention.
      if (fault !== 'lock-ttl-is-retention') await store.delete(key);
      return problem(res, 500, 'Internal Server Error');
    }
    await store.set(key, { state: 'done', fingerprint, ...response });
    send(res, response);
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch((error: unknown) => {
        res.destroy(error as Error);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    created: () => created,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
