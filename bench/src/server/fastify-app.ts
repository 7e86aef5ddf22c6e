/** Fastify 5: bare, or with the @oncely/fastify plugin. */
import { idempotency } from '@oncely/fastify';
import Fastify from 'fastify';
import { createPayment, workMsOf } from './handler.ts';
import type { ServerSpec } from './spec.ts';
import { openStore } from './stores.ts';

export async function startFastify(spec: ServerSpec): Promise<{ port: number; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  let closeStore = async () => {};
  if (spec.variant === 'oncely') {
    const opened = await openStore(spec);
    closeStore = opened.close;
    await app.register(idempotency, { store: opened.store });
  }
  app.post('/payments', async (request, reply) => {
    const payment = await createPayment({
      key: request.headers['idempotency-key'] as string | undefined,
      body: request.body,
      workMs: workMsOf(request.headers['x-work-ms']),
    });
    return reply.code(201).send(payment);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('fastify: no port');
  return {
    port: address.port,
    close: async () => {
      await app.close();
      await closeStore();
    },
  };
}
