/**
 * The conformance suite's routes as an Express user would write them, and a helper that serves an
 * app on 127.0.0.1 on a free port.
 */

import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpTestSetup, RunningServer } from '@oncely/conformance';
import express, { type Express, type Request } from 'express';
import { idempotency, keepRawBody } from './index.ts';

/** Serve `app` on 127.0.0.1 on a free port; `close` drops open connections at once. */
export async function listen(app: Express): Promise<RunningServer> {
  const server = createServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Start the server of the HTTP behaviour suite (`@oncely/conformance`). */
export function startExpressTestServer({ options, app: counters }: HttpTestSetup): Promise<RunningServer> {
  const app = express();
  app.set('env', 'test'); // Express's default error handler logs stacks except in 'test'
  const shared = { ...options, scope: (req: Request) => req.get('x-tenant') };

  // The parser first, keeping the raw bytes for the fingerprint, as docs/express.md shows.
  app.use(express.json({ verify: keepRawBody }));
  app.use(idempotency(shared));

  app.post('/payments', (req, res) => {
    const n = counters.executed('payments');
    res
      .status(201)
      .location(`/payments/pay_${n}`)
      .set('X-Custom', `custom-${n}`)
      .append('Set-Cookie', `session=s${n}`)
      .json({ id: `pay_${n}`, amount: req.body?.amount ?? null, n });
  });
  app.patch('/payments', (_req, res) => {
    res.json({ n: counters.executed('patch') });
  });
  app.get('/payments', (_req, res) => {
    res.json({ n: counters.executed('get') });
  });
  // The global instance passes keyless requests through; this one then refuses them.
  app.post('/required', idempotency({ ...shared, required: true }), (_req, res) => {
    res.status(201).json({ n: counters.executed('required') });
  });
  app.post('/status/:code', (req, res) => {
    res.status(Number(req.params.code)).json({ n: counters.executed('status') });
  });
  app.post('/throw', () => {
    counters.executed('throw');
    throw new Error('handler failed');
  });
  app.post('/binary', (_req, res) => {
    counters.executed('binary');
    res.type('application/octet-stream').send(Buffer.from(counters.binary));
  });
  app.post('/empty', (_req, res) => {
    counters.executed('empty');
    res.status(204).end();
  });
  app.post('/stream', async (_req, res) => {
    counters.executed('stream');
    res.status(200).setHeader('Content-Type', 'text/plain');
    for (const chunk of counters.chunks) {
      res.write(chunk);
      await sleep(10);
    }
    res.end();
  });
  app.post('/large', (req, res) => {
    counters.executed('large');
    res.type('application/octet-stream').send(Buffer.alloc(Number(req.query.size), 'x'));
  });
  app.post('/slow', async (req, res) => {
    const n = counters.executed('slow');
    const signal = req.idempotency?.signal ?? new AbortController().signal;
    await sleep(Number(req.query.ms), undefined, { signal }).catch(() => {});
    counters.signal(signal.aborted);
    res.status(201).json({ n, aborted: signal.aborted });
  });
  app.post('/deaf', async (req, res) => {
    const n = counters.executed('deaf');
    await sleep(Number(req.query.ms)); // deaf to the signal: work that ignores its bound
    if (!res.destroyed) res.status(201).json({ n });
  });
  app.post('/echo', express.raw({ type: () => true }), (req, res) => {
    counters.executed('echo');
    res.setHeader('Content-Type', req.get('content-type') ?? 'application/octet-stream');
    res.send(req.body);
  });

  return listen(app);
}
