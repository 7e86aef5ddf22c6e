/**
 * The Hono app of the HTTP behaviour suite (see `@oncely/conformance`'s `describeHttpBehaviour` for the
 * routes), and a way to serve it on a real port with `@hono/node-server`.
 */

import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { serve } from '@hono/node-server';
import type { HttpTestSetup, RunningServer } from '@oncely/conformance';
import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { idempotency } from './index.ts';

/** The suite's routes, written the way a Hono user would write them. */
export function createTestApp({ options, app }: HttpTestSetup): Hono {
  const shared = { ...options, scope: (c: Context) => c.req.header('x-tenant') };
  const idem = idempotency(shared);
  const hono = new Hono();

  hono.use('/payments', idem);
  hono.post('/payments', async (c) => {
    const n = app.executed('payments');
    const body = await c.req.json<{ amount?: number }>();
    c.header('Location', `/payments/pay_${n}`);
    c.header('X-Custom', `custom-${n}`);
    c.header('Set-Cookie', `session=s${n}`);
    return c.json({ id: `pay_${n}`, amount: body.amount ?? null, n }, 201);
  });
  hono.patch('/payments', (c) => c.json({ n: app.executed('patch') }));
  hono.get('/payments', (c) => c.json({ n: app.executed('get') }));

  hono.post('/required', idempotency({ ...shared, required: true }), (c) =>
    c.json({ n: app.executed('required') }, 201),
  );
  hono.post('/status/:code', idem, (c) => {
    const n = app.executed('status');
    return c.json({ n }, Number(c.req.param('code')) as ContentfulStatusCode);
  });
  hono.post('/throw', idem, () => {
    app.executed('throw');
    throw new Error('the handler failed');
  });
  hono.post('/binary', idem, (c) => {
    app.executed('binary');
    return c.body(app.binary.slice(), 200, { 'Content-Type': 'application/octet-stream' });
  });
  hono.post('/empty', idem, (c) => {
    app.executed('empty');
    return c.body(null, 204);
  });
  hono.post('/stream', idem, (c) => {
    app.executed('stream');
    const encoder = new TextEncoder();
    const chunks = [...app.chunks];
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const chunk = chunks.shift();
        if (chunk === undefined) return controller.close();
        await sleep(10);
        controller.enqueue(encoder.encode(chunk));
      },
    });
    return c.body(body, 200, { 'Content-Type': 'text/plain' });
  });
  hono.post('/large', idem, (c) => {
    app.executed('large');
    const size = Number(c.req.query('size') ?? 0);
    return c.body(new Uint8Array(size).fill(0x78), 200, { 'Content-Type': 'application/octet-stream' });
  });
  hono.post('/slow', idem, async (c) => {
    const n = app.executed('slow');
    const signal = c.get('idempotency')?.signal;
    const ms = Number(c.req.query('ms') ?? 0);
    await sleep(ms, undefined, { signal }).catch(() => {});
    const aborted = signal?.aborted ?? false;
    app.signal(aborted);
    return c.json({ n, aborted }, 201);
  });
  hono.post('/deaf', idem, async (c) => {
    const n = app.executed('deaf');
    await sleep(Number(c.req.query('ms') ?? 0)); // deaf to the signal: work that ignores its bound
    return c.json({ n }, 201);
  });
  hono.post('/echo', idem, async (c) => {
    app.executed('echo');
    const bytes = await c.req.arrayBuffer();
    return c.body(bytes, 200, { 'Content-Type': c.req.header('content-type') ?? 'application/octet-stream' });
  });
  return hono;
}

/** Serve the suite's app on a free port of 127.0.0.1. */
export async function startHonoTestServer(setup: HttpTestSetup): Promise<RunningServer> {
  const app = createTestApp(setup);
  const { server, port } = await new Promise<{ server: ReturnType<typeof serve>; port: number }>(
    (resolve) => {
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) =>
        resolve({ server, port: info.port }),
      );
    },
  );
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        // Keep-alive sockets of the test's fetch would otherwise hold `close` open for seconds.
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
