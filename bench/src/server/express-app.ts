/** Express 5: bare, with @oncely/express, or with one of the peers (their glue lives in peers.ts). */
import type { Server } from 'node:http';
import { idempotency } from '@oncely/express';
import express from 'express';
import { createPayment, workMsOf } from './handler.ts';
import type { ServerSpec } from './spec.ts';
import { openStore } from './stores.ts';

export async function startExpress(spec: ServerSpec): Promise<{ server: Server; close(): Promise<void> }> {
  const app = express();
  app.use(express.json());
  let close = async () => {};
  if (spec.variant === 'bare' || spec.variant === 'oncely') {
    const handler: express.RequestHandler = async (req, res) => {
      const payment = await createPayment({
        key: req.get('idempotency-key'),
        body: req.body,
        workMs: workMsOf(req.headers['x-work-ms']),
      });
      res.status(201).json(payment);
    };
    if (spec.variant === 'oncely') {
      const opened = await openStore(spec);
      close = opened.close;
      app.post('/payments', idempotency({ store: opened.store }), handler);
    } else {
      app.post('/payments', handler);
    }
  } else {
    // Loaded only for peer cases: start-up time is per case run, so servers import what they use.
    const { peerRoute } = await import('./peers.ts');
    const peer = await peerRoute(spec);
    close = peer.close;
    app.post('/payments', ...peer.handlers);
  }
  // Errors a middleware passes to next() (a peer's 409) answer with their status, without Express's
  // default handler printing every stack to stderr under load.
  const onError: express.ErrorRequestHandler = (error, _req, res, _next) => {
    const status = (error as { status?: number }).status ?? (res.statusCode >= 400 ? res.statusCode : 500);
    res.status(status).json({ error: (error as Error).message });
  };
  app.use(onError);
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { server, close };
}
