/**
 * The Fastify server of the HTTP behaviour suite: the routes of `describeHttpBehaviour`, written the
 * way a Fastify user would write them.
 */
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpTestSetup, RunningServer } from '@oncely/conformance';
import Fastify, { type FastifyInstance } from 'fastify';
import { type FastifyIdempotencyOptions, idempotency } from './index.ts';

const NEVER_ABORTED = new AbortController().signal;

/** A Fastify app with the plugin registered (scope from `x-tenant`) and no routes yet. */
export async function createApp(options: FastifyIdempotencyOptions): Promise<FastifyInstance> {
  // forceCloseConnections: close() must not wait for the keep-alive connections of fetch.
  const app = Fastify({ forceCloseConnections: true });
  await app.register(idempotency, {
    scope: (request) => {
      const tenant = request.headers['x-tenant'];
      return typeof tenant === 'string' ? tenant : undefined;
    },
    ...options,
  });
  // The user's side: Fastify parses JSON and text itself; raw bytes need a parser.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  return app;
}

/** Listen on a free port of 127.0.0.1. */
export async function listen(app: FastifyInstance): Promise<RunningServer> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

/** Build the suite's server and start it. */
export async function startFastifyTestServer(setup: HttpTestSetup): Promise<RunningServer> {
  const { app: counters } = setup;
  const app = await createApp(setup.options);

  app.post<{ Body: { amount?: number } | null }>('/payments', async (request, reply) => {
    const n = counters.executed('payments');
    const id = `pay_${n}`;
    reply
      .code(201)
      .header('location', `/payments/${id}`)
      .header('x-custom', `custom-${n}`)
      .header('set-cookie', `session=s${n}`);
    return { id, amount: request.body?.amount ?? null, n };
  });
  app.patch('/payments', async () => ({ n: counters.executed('patch') }));
  app.get('/payments', async () => ({ n: counters.executed('get') }));
  app.post('/required', { config: { idempotency: { required: true } } }, async (_request, reply) => {
    reply.code(201);
    return { n: counters.executed('required') };
  });
  app.post<{ Params: { code: string } }>('/status/:code', async (request, reply) => {
    reply.code(Number(request.params.code));
    return { n: counters.executed('status') };
  });
  app.post('/throw', async () => {
    counters.executed('throw');
    throw new Error('the handler failed');
  });
  app.post('/binary', async (_request, reply) => {
    counters.executed('binary');
    return reply.type('application/octet-stream').send(Buffer.from(counters.binary));
  });
  app.post('/empty', async (_request, reply) => {
    counters.executed('empty');
    return reply.code(204).send();
  });
  app.post('/stream', async (_request, reply) => {
    counters.executed('stream');
    const chunks = counters.chunks;
    const body = Readable.from(
      (async function* () {
        for (const [i, chunk] of chunks.entries()) {
          if (i > 0) await sleep(10);
          yield Buffer.from(chunk);
        }
      })(),
    );
    return reply.type('text/plain').send(body);
  });
  app.post<{ Querystring: { size?: string } }>('/large', async (request, reply) => {
    counters.executed('large');
    return reply.type('application/octet-stream').send(Buffer.alloc(Number(request.query.size ?? 0), 'x'));
  });
  app.post<{ Querystring: { ms?: string } }>('/slow', async (request, reply) => {
    const n = counters.executed('slow');
    const signal = request.idempotency?.signal ?? NEVER_ABORTED;
    await sleep(Number(request.query.ms ?? 0), undefined, { signal }).catch(() => {});
    counters.signal(signal.aborted);
    reply.code(201);
    return { n, aborted: signal.aborted };
  });
  app.post<{ Querystring: { ms?: string } }>('/deaf', async (request, reply) => {
    const n = counters.executed('deaf');
    await sleep(Number(request.query.ms ?? 0)); // deaf to the signal: work that ignores its bound
    reply.code(201);
    return { n };
  });
  app.post('/echo', async (request, reply) => {
    counters.executed('echo');
    const type = request.headers['content-type'];
    if (type) reply.type(type);
    return reply.send(request.body as Buffer);
  });

  return listen(app);
}
