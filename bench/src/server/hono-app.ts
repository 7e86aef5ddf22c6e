/** Hono on @hono/node-server: bare, or with @oncely/hono. */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { idempotency } from '@oncely/hono';
import { Hono } from 'hono';
import { createPayment, workMsOf } from './handler.ts';
import type { ServerSpec } from './spec.ts';
import { openStore } from './stores.ts';

export async function startHono(spec: ServerSpec): Promise<{ port: number; close(): Promise<void> }> {
  const app = new Hono();
  let closeStore = async () => {};
  if (spec.variant === 'oncely') {
    const opened = await openStore(spec);
    closeStore = opened.close;
    app.use('/payments', idempotency({ store: opened.store }));
  }
  app.post('/payments', async (c) => {
    const payment = await createPayment({
      key: c.req.header('idempotency-key'),
      body: await c.req.json(),
      workMs: workMsOf(c.req.header('x-work-ms')),
    });
    return c.json(payment, 201);
  });
  const port = await new Promise<number>((resolve) => {
    serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => resolve(info.port));
  });
  return { port, close: closeStore };
}
