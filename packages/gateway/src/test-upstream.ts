/**
 * The upstream the gateway tests proxy to: a plain node:http server with the routes of the HTTP
 * behaviour suite (`@oncely/conformance`), written as a service without Oncely would write them,
 * plus a few routes for the gateway's own tests. Every handler counts its executions.
 */

import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestApp } from '@oncely/conformance';

/** A gate a route waits at until the test opens it. */
export class Latch {
  #open!: () => void;
  readonly opened: Promise<void> = new Promise((resolve) => {
    this.#open = resolve;
  });
  open(): void {
    this.#open();
  }
}

export interface TestUpstream {
  url: string;
  app: TestApp;
  /** Requests as the upstream received them, by route counter (method, path, header pairs, body). */
  received: Array<{
    counter: string;
    method: string;
    url: string;
    headers: Array<[string, string]>;
    body: Buffer;
  }>;
  /** `/gated` and `/stream-gated` wait here. */
  gate: Latch;
  close(): Promise<void>;
}

export interface TestUpstreamOptions {
  port?: number;
  /** Count executions here (the suite passes its own). @default a new TestApp */
  app?: TestApp;
}

/** Start the test upstream on 127.0.0.1. */
export async function startTestUpstream(options: TestUpstreamOptions = {}): Promise<TestUpstream> {
  const app = options.app ?? new TestApp();
  const received: TestUpstream['received'] = [];
  let gate = new Latch();

  /**
   * A plain HTTP service learns that its caller gave up when the connection closes: the gateway cuts
   * the upstream call when its lease is lost, so that is the `/slow` handler's signal.
   */
  const slowSignal = (res: ServerResponse): AbortSignal => {
    const controller = new AbortController();
    res.once('close', () => {
      if (!res.writableEnded) controller.abort(new Error('the caller closed the connection'));
    });
    return controller.signal;
  };

  const json = (
    res: ServerResponse,
    status: number,
    value: unknown,
    headers: Record<string, string | string[]> = {},
  ) => {
    const body = Buffer.from(JSON.stringify(value));
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': body.byteLength,
      ...headers,
    });
    res.end(body);
  };

  async function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const route = `${req.method} ${url.pathname}`;
    const record = (counter: string): number => {
      received.push({
        counter,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: pairs(req.rawHeaders),
        body,
      });
      return app.executed(counter);
    };

    if (route === 'POST /payments') {
      const n = record('payments');
      const parsed = JSON.parse(body.toString() || 'null') as { amount?: unknown } | null;
      json(
        res,
        201,
        { id: `pay_${n}`, amount: parsed?.amount ?? null, n },
        { location: `/payments/pay_${n}`, 'x-custom': `custom-${n}`, 'set-cookie': [`session=s${n}`] },
      );
      return;
    }
    if (route === 'PATCH /payments') return json(res, 200, { n: record('patch') });
    if (route === 'GET /payments') return json(res, 200, { n: record('get') });
    if (route === 'POST /required') return json(res, 201, { n: record('required') });
    const statusMatch = /^POST \/status\/(\d{3})$/.exec(route);
    if (statusMatch) return json(res, Number(statusMatch[1]), { n: record('status') });
    if (route === 'POST /throw') {
      record('throw');
      // This service's error handling: a 500 for an exception, marked as no outcome to keep.
      return json(res, 500, { error: 'the handler failed' }, { 'oncely-release': 'true' });
    }
    if (route === 'POST /binary') {
      record('binary');
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.from(app.binary));
      return;
    }
    if (route === 'POST /empty') {
      record('empty');
      res.writeHead(204);
      res.end();
      return;
    }
    if (route === 'POST /stream') {
      record('stream');
      res.writeHead(200, { 'content-type': 'text/plain' });
      for (const chunk of app.chunks) {
        res.write(chunk);
        await sleep(10);
      }
      res.end();
      return;
    }
    if (route === 'POST /large') {
      record('large');
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.alloc(Number(url.searchParams.get('size')), 'x'));
      return;
    }
    if (route === 'POST /slow') {
      const n = record('slow');
      const signal = slowSignal(res);
      await sleep(Number(url.searchParams.get('ms')), undefined, { signal }).catch(() => {});
      app.signal(signal.aborted);
      return json(res, 201, { n, aborted: signal.aborted });
    }
    if (route === 'POST /deaf') {
      const n = record('deaf');
      await sleep(Number(url.searchParams.get('ms'))); // deaf to the cut: work that ignores its bound
      if (!res.destroyed) json(res, 201, { n });
      return;
    }
    if (route === 'POST /echo') {
      record('echo');
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
      res.end(body);
      return;
    }

    // The gateway's own tests.
    if (url.pathname === '/inspect') {
      record('inspect');
      const payload = Buffer.from(
        JSON.stringify({
          method: req.method,
          url: req.url,
          headers: pairs(req.rawHeaders),
          bodyBytes: body.byteLength,
        }),
      );
      // Hop-by-hop fields the gateway must not pass on, and one it must.
      // Chunked (no Content-Length): Node refuses a Trailer field on a response of fixed length.
      res.writeHead(
        200,
        [
          ['Content-Type', 'application/json'],
          ['Connection', 'keep-alive, X-Resp-Hop'],
          ['X-Resp-Hop', 'secret'],
          ['Keep-Alive', 'timeout=77, max=3'],
          ['Proxy-Authenticate', 'Basic realm="upstream"'],
          ['Trailer', 'X-Checksum'],
          ['Upgrade', 'h2c'],
          ['X-End-To-End', 'kept'],
        ].flat(),
      );
      res.end(payload);
      return;
    }
    if (route === 'POST /gated') {
      const n = record('gated');
      await gate.opened;
      return json(res, 201, { n });
    }
    if (route === 'GET /stream-gated') {
      record('stream-gated');
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first\n');
      await gate.opened;
      res.end('last\n');
      return;
    }
    if (route === 'POST /hang') {
      record('hang');
      return; // never answers; the gateway's timeout or a closed connection ends it
    }
    if (route === 'POST /reset') {
      record('reset');
      req.socket.destroy();
      return;
    }
    if (route === 'POST /reset-mid') {
      record('reset-mid');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000' });
      res.write(Buffer.alloc(100, 'x'));
      await sleep(20);
      req.socket.destroy();
      return;
    }
    if (route === 'POST /crash-once') {
      const n = record('crash-once');
      // The first call hangs (its gateway is killed meanwhile); later calls answer at once.
      if (n === 1) return;
      return json(res, 201, { n });
    }
    if (route === 'POST /big-chunked') {
      record('big-chunked');
      const size = Number(url.searchParams.get('size'));
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let offset = 0; offset < size; offset += 16_384) {
        const chunk = Buffer.alloc(Math.min(16_384, size - offset));
        for (let i = 0; i < chunk.byteLength; i++) chunk[i] = (offset + i) % 251;
        res.write(chunk);
        await sleep(1);
      }
      res.end();
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch((error: unknown) => {
        res.destroy(error instanceof Error ? error : undefined);
      });
    });
  });
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    received,
    get gate() {
      return gate;
    },
    set gate(latch: Latch) {
      gate = latch;
    },
    async close() {
      gate.open();
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

function pairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!, raw[i + 1]!]);
  return out;
}
