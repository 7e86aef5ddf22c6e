// The app the packaging test (scripts/packaging-test.ts) installs the packed tarballs for, outside the
// repo: it type-checks under `moduleResolution` `nodenext` and `bundler`, then runs on the lowest
// supported Node and on 24. Every public entry point is imported as a user would; the engine, the three
// adapters, the client and the gateway each handle one retried request.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@oncely/client';
import { describeHttpBehaviour, describeStoreContract } from '@oncely/conformance';
import { createOncely, DEFAULTS, memoryStore, type Store } from '@oncely/core';
import { clientSignal } from '@oncely/core/node';
import { idempotency as expressIdempotency } from '@oncely/express';
import { idempotency as fastifyIdempotency } from '@oncely/fastify';
import { createGateway, GATEWAY_DEFAULTS } from '@oncely/gateway';
import { idempotency as honoIdempotency } from '@oncely/hono';
import { postgresStore } from '@oncely/postgres';
import { redisStore } from '@oncely/redis';
import { SQLITE_DEFAULTS, sqliteStore } from '@oncely/sqlite';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';

const KEY = { 'idempotency-key': 'order_42:pay:1', 'content-type': 'application/json' };
const dir = mkdtempSync(join(tmpdir(), 'oncely-packaging-app-'));
const results: string[] = [];

try {
  for (const entry of [
    describeStoreContract,
    describeHttpBehaviour,
    clientSignal,
    postgresStore,
    redisStore,
  ]) {
    assert.equal(typeof entry, 'function');
  }
  assert.equal(typeof DEFAULTS.ttlMs, 'number');
  assert.equal(typeof SQLITE_DEFAULTS, 'object');
  assert.equal(typeof GATEWAY_DEFAULTS, 'object');

  // The engine on both embedded stores: the work runs once, the retry gets its result back.
  for (const [name, store] of [
    ['memory', memoryStore()],
    ['sqlite', sqliteStore({ database: join(dir, 'oncely.db') })],
  ] as Array<[string, Store]>) {
    const oncely = createOncely({ store });
    let runs = 0;
    const work = async (): Promise<{ id: string }> => ({ id: `pay_${++runs}` });
    const first = await oncely.run({ key: 'order_42:pay:1' }, work);
    const retry = await oncely.run({ key: 'order_42:pay:1' }, work);
    assert.deepEqual([first, retry, runs], [{ id: 'pay_1' }, { id: 'pay_1' }, 1]);
    await store.close();
    results.push(`engine on ${name}`);
  }

  // Hono, without a server.
  {
    let charges = 0;
    const app = new Hono();
    app.post('/payments', honoIdempotency({ store: memoryStore() }), (c) =>
      c.json({ charge: ++charges }, 201),
    );
    const send = () => app.request('/payments', { method: 'POST', headers: KEY, body: '{"amount":1999}' });
    const [first, retry] = [await send(), await send()];
    assert.deepEqual([first.status, retry.status, charges], [201, 201, 1]);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    results.push('hono');
  }

  // Fastify, by inject.
  {
    let charges = 0;
    const app = Fastify();
    await app.register(fastifyIdempotency, { store: memoryStore() });
    app.post('/payments', async (_request, reply) => reply.code(201).send({ charge: ++charges }));
    const send = () =>
      app.inject({ method: 'POST', url: '/payments', headers: KEY, payload: '{"amount":1999}' });
    const [first, retry] = [await send(), await send()];
    assert.deepEqual([first.statusCode, retry.statusCode, charges], [201, 201, 1]);
    assert.equal(retry.headers['idempotent-replayed'], 'true');
    await app.close();
    results.push('fastify');
  }

  // Express on a real port, called through @oncely/client and through the gateway in front of it.
  {
    let charges = 0;
    const app = express();
    app.use(express.json(), expressIdempotency({ store: memoryStore() }));
    app.post('/payments', (_req, res) => {
      res.status(201).json({ charge: ++charges });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const upstream = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const client = createClient({ timeoutMs: 5_000 });
      const first = await client.post<{ charge: number }>(
        `${upstream}/payments`,
        { amount: 1999 },
        { key: 'k1' },
      );
      const retry = await client.post<{ charge: number }>(
        `${upstream}/payments`,
        { amount: 1999 },
        { key: 'k1' },
      );
      assert.ok(first.ok && retry.ok);
      assert.deepEqual(
        [first.data, retry.data, retry.replayed, charges],
        [{ charge: 1 }, { charge: 1 }, true, 1],
      );
      results.push('express with the client');

      const gateway = createGateway({ upstream, store: memoryStore() });
      const base = await gateway.listen({ port: 0 });
      try {
        const headers = { ...KEY, 'idempotency-key': 'k2' };
        const send = () => fetch(`${base}/payments`, { method: 'POST', headers, body: '{}' });
        const before = charges;
        const [a, b] = [await send(), await send()];
        assert.deepEqual(
          [a.status, b.status, await a.text(), charges - before],
          [201, 201, await b.text(), 1],
        );
        assert.equal(b.headers.get('idempotent-replayed'), 'true');
        results.push('gateway');
      } finally {
        await gateway.close();
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }
  console.log(`packaging app on Node ${process.version}: ${results.join(', ')}: ok`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
