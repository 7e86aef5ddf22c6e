/**
 * Test servers for the auditor: a small payments API on Fastify, with @oncely/fastify on a memory
 * store (what an audit should pass) or bare (what it should fail). Both count their payments at
 * `GET /payments/count`, scope keys by `x-tenant`, and take `{"fail": true}` as a payment to refuse.
 */

import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type HttpIdempotencyOptions, memoryStore } from '@oncely/core';
import { idempotency } from '@oncely/fastify';
import Fastify from 'fastify';

export interface TestApi {
  url: string;
  /** Payments created so far. */
  created: () => number;
  close: () => Promise<void>;
}

export interface TestApiOptions {
  /** Oncely options (a memory store is added), or false for the bare route. */
  idempotency: Partial<HttpIdempotencyOptions> | false;
  /** How long a payment takes. @default 100 */
  latencyMs?: number;
}

export async function startTestApi(options: TestApiOptions): Promise<TestApi> {
  const app = Fastify({ forceCloseConnections: true });
  const store = memoryStore();
  if (options.idempotency) {
    await app.register(idempotency, {
      store,
      ...options.idempotency,
      scope: (request) => {
        const tenant = request.headers['x-tenant'];
        return typeof tenant === 'string' ? tenant : undefined;
      },
    });
  }
  let created = 0;
  app.post<{ Body: { amount?: number; fail?: boolean } }>(
    '/payments',
    { config: { idempotency: { required: true } } },
    async (request, reply) => {
      await sleep(options.latencyMs ?? 100);
      if (request.body?.fail) return reply.code(402).send({ error: 'card_declined' });
      created++;
      const id = `pay_${created}`;
      return reply
        .code(201)
        .header('location', `/payments/${id}`)
        .send({ id, amount: request.body?.amount ?? null });
    },
  );
  app.get('/payments/count', async () => ({ count: created }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    created: () => created,
    close: async () => {
      await app.close();
      await store.close();
    },
  };
}
