import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeHttpBehaviour } from '@oncely/conformance';
import { isOncelyError, memoryStore, recordId } from '@oncely/core';
import { testStores } from '@oncely/test-stores';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { type FastifyIdempotencyOptions, idempotency } from './index.ts';
import { createApp, listen, startFastifyTestServer } from './test-app.ts';

// The same suite on every store, over real HTTP: memory, SQLite, and the real Redis and PostgreSQL.
for (const kind of testStores()) {
  describeHttpBehaviour({ ...kind, name: `fastify + ${kind.name}`, start: startFastifyTestServer });
}

describe('@oncely/fastify', () => {
  const running: Array<() => Promise<void>> = [];
  after(async () => {
    for (const close of running.splice(0)) await close();
  });

  /** A listening app with the plugin and the routes `routes` adds; `send` posts with a key by default. */
  async function start(
    routes: (app: FastifyInstance, count: (name: string) => number) => void,
    options: Partial<FastifyIdempotencyOptions> = {},
  ) {
    const counts = new Map<string, number>();
    const count = (name: string): number => {
      const n = (counts.get(name) ?? 0) + 1;
      counts.set(name, n);
      return n;
    };
    const store = memoryStore({ sweepIntervalMs: 0 });
    const app = await createApp({ store, ...options });
    routes(app, count);
    const server = await listen(app);
    running.push(async () => {
      await server.close();
      await store.close();
    });
    const send = async (
      path: string,
      init: { key?: string | null; body?: string | Uint8Array; type?: string } = {},
    ) => {
      const headers: Record<string, string> = {};
      if (init.key !== null) headers['idempotency-key'] = init.key ?? 'key-1';
      if (init.body !== undefined) headers['content-type'] = init.type ?? 'application/json';
      const response = await fetch(new URL(path, server.url), {
        method: 'POST',
        headers,
        body: init.body,
      });
      const body = Buffer.from(await response.arrayBuffer());
      return {
        status: response.status,
        headers: response.headers,
        body,
        text: body.toString('utf8'),
        replayed: response.headers.get('idempotent-replayed') === 'true',
      };
    };
    return { app, url: server.url, send, ran: (name: string) => counts.get(name) ?? 0 };
  }

  describe('route config', () => {
    it('required: true refuses a request without a key; false turns the plugin off for the route', async () => {
      const { send, ran } = await start((app, count) => {
        app.post('/must', { config: { idempotency: { required: true } } }, async () => ({
          n: count('must'),
        }));
        app.post('/off', { config: { idempotency: false } }, async (request) => ({
          n: count('off'),
          recorded: request.idempotency !== null,
        }));
      });
      const missing = await send('/must', { key: null });
      assert.equal(missing.status, 400);
      assert.match(missing.text, /ERR_ONCELY_KEY_MISSING/);
      assert.equal(ran('must'), 0);
      const first = await send('/off', { key: 'k' });
      const second = await send('/off', { key: 'k' });
      assert.deepEqual(
        [first.text, second.text].map((t) => JSON.parse(t)),
        [
          { n: 1, recorded: false },
          { n: 2, recorded: false },
        ],
      );
      assert.equal(second.replayed, false);
    });

    it('required: false on a route overrides the plugin-wide required: true', async () => {
      const { send } = await start(
        (app, count) => {
          app.post('/strict', async () => ({ n: count('strict') }));
          app.post('/lenient', { config: { idempotency: { required: false } } }, async () => ({
            n: count('lenient'),
          }));
        },
        { required: true },
      );
      assert.equal((await send('/strict', { key: null })).status, 400);
      assert.equal((await send('/lenient', { key: null })).status, 200);
    });

    it('refuses an invalid route config when the route is added', async () => {
      const app = await createApp({ store: memoryStore() });
      for (const config of [true, { required: 'yes' }, { requried: true }, null]) {
        assert.throws(
          () => app.post('/bad', { config: { idempotency: config as never } }, async () => ({})),
          (error: unknown) => isOncelyError(error) && error.code === 'ERR_ONCELY_INVALID_OPTION',
        );
      }
      await app.close();
    });
  });

  describe('registration', () => {
    it('refuses unknown options and a scope that is not a function', async () => {
      for (const options of [{ ttl: 1000 }, { scope: 'tenant' }]) {
        const app = Fastify();
        await assert.rejects(
          async () => {
            await app.register(idempotency, { store: memoryStore(), ...(options as object) });
            await app.ready();
          },
          (error: unknown) => isOncelyError(error) && error.code === 'ERR_ONCELY_INVALID_OPTION',
        );
        await app.close();
      }
    });

    it('is not encapsulated: it covers routes of child plugins, and refuses to be registered twice', async () => {
      const { app, send, ran } = await start((app, count) => {
        app.register(async (child) => {
          child.post('/child', async () => ({ n: count('child') }));
        });
      });
      await send('/child');
      assert.equal((await send('/child')).replayed, true);
      assert.equal(ran('child'), 1);
      const twice = Fastify();
      twice.register(idempotency, { store: memoryStore() });
      twice.register(idempotency, { store: memoryStore() });
      await assert.rejects(async () => twice.ready(), /idempotency/);
      await twice.close();
      assert.ok(app.hasRequestDecorator('idempotency'));
    });

    it('leaves unknown routes alone: a 404 is never recorded', async () => {
      const { send } = await start(() => {}, { cache: 'final-errors' });
      assert.equal((await send('/nowhere')).status, 404);
      const again = await send('/nowhere');
      assert.equal(again.status, 404);
      assert.equal(again.replayed, false);
    });
  });

  describe('request.idempotency', () => {
    it('holds the signal and the parsed key on a recorded request and is null otherwise', async () => {
      const { send } = await start((app) => {
        app.post('/seen', async (request) => ({
          recorded: request.idempotency !== null,
          signal: request.idempotency?.signal instanceof AbortSignal,
          key: request.idempotency?.key ?? null,
          keyHash: request.idempotency?.keyHash ?? null,
        }));
      });
      assert.deepEqual(JSON.parse((await send('/seen', { key: null })).text), {
        recorded: false,
        signal: false,
        key: null,
        keyHash: null,
      });
      assert.deepEqual(JSON.parse((await send('/seen', { key: '"key-1"' })).text), {
        recorded: true,
        signal: true,
        key: 'key-1',
        keyHash: recordId('', 'key-1'),
      });
    });
  });

  describe('payloads', () => {
    const kinds: Array<[string, (reply: FastifyReply) => unknown, string]> = [
      ['a string', (reply) => reply.type('text/plain').send('plain text ✓'), 'plain text ✓'],
      ['a Buffer', (reply) => reply.send(Buffer.from('buffer bytes')), 'buffer bytes'],
      [
        'an object',
        (reply) => reply.send({ kind: 'object', list: [1, 2] }),
        '{"kind":"object","list":[1,2]}',
      ],
      [
        'a Node stream',
        (reply) => reply.type('text/csv').send(Readable.from([Buffer.from('a,b\n'), Buffer.from('1,2\n')])),
        'a,b\n1,2\n',
      ],
      [
        'a web ReadableStream',
        (reply) => reply.type('text/plain').send(new Blob(['web ', 'stream']).stream()),
        'web stream',
      ],
      [
        'a web Response',
        (reply) =>
          reply.send(
            new Response('from a Response', { status: 202, headers: { 'content-type': 'text/x-response' } }),
          ),
        'from a Response',
      ],
    ];
    for (const [label, respond, expected] of kinds) {
      it(`captures and replays ${label}`, async () => {
        const { send, ran } = await start((app, count) => {
          app.post('/payload', async (_request, reply) => {
            count('payload');
            return respond(reply);
          });
        });
        const first = await send('/payload');
        assert.equal(first.text, expected);
        const again = await send('/payload');
        assert.equal(again.replayed, true);
        assert.equal(again.status, first.status);
        assert.deepEqual(again.body, first.body);
        assert.equal(again.headers.get('content-type'), first.headers.get('content-type'));
        assert.equal(ran('payload'), 1);
      });
    }

    it('keeps the status and headers of a web Response', async () => {
      const { send } = await start((app) => {
        app.post(
          '/response',
          async () => new Response('made', { status: 201, headers: { 'x-made': 'yes' } }),
        );
      });
      for (const reply of [await send('/response'), await send('/response')]) {
        assert.equal(reply.status, 201);
        assert.equal(reply.headers.get('x-made'), 'yes');
        assert.equal(reply.text, 'made');
      }
    });

    it('replays reply.send() without a payload as an empty body, adding no Content-Type', async () => {
      const { send, ran } = await start((app, count) => {
        app.post('/nothing', async (_request, reply) => {
          count('nothing');
          return reply.code(201).header('x-done', 'yes').send();
        });
      });
      const first = await send('/nothing');
      const again = await send('/nothing');
      for (const reply of [first, again]) {
        assert.equal(reply.status, 201);
        assert.equal(reply.body.byteLength, 0);
        assert.equal(reply.headers.get('content-type'), null);
        assert.equal(reply.headers.get('x-done'), 'yes');
      }
      assert.equal(again.replayed, true);
      assert.equal(ran('nothing'), 1);
    });

    it('replays a stream sent without a Content-Type without adding one', async () => {
      const { send } = await start((app) => {
        app.post('/untyped', async (_request, reply) => reply.send(Readable.from([Buffer.from('raw')])));
      });
      const first = await send('/untyped');
      const again = await send('/untyped');
      assert.equal(again.replayed, true);
      assert.equal(again.text, 'raw');
      assert.equal(again.headers.get('content-type'), first.headers.get('content-type'));
    });

    it('keeps repeated header lines', async () => {
      const { send } = await start((app) => {
        app.post('/links', async (_request, reply) => {
          reply.raw.setHeader('link', ['</a>; rel="a"', '</b>; rel="b"']);
          return { ok: true };
        });
      });
      const first = await send('/links');
      const again = await send('/links');
      assert.equal(again.replayed, true);
      assert.equal(again.headers.get('link'), '</a>; rel="a", </b>; rel="b"');
      assert.equal(again.headers.get('link'), first.headers.get('link'));
    });
  });

  describe('errors', () => {
    it('a thrown error releases the key: the retry runs and its response is kept', async () => {
      const { send, ran } = await start((app, count) => {
        app.post('/flaky', async () => {
          if (count('flaky') === 1) throw new Error('first attempt fails');
          return { ok: true };
        });
      });
      assert.equal((await send('/flaky')).status, 500);
      const retry = await send('/flaky');
      assert.equal(retry.status, 200);
      assert.equal(retry.replayed, false);
      assert.equal((await send('/flaky')).replayed, true);
      assert.equal(ran('flaky'), 2);
    });

    it('a thrown error releases the key whatever its status and the cache policy', async () => {
      const { send, ran } = await start(
        (app, count) => {
          app.setErrorHandler(async (error, _request, reply) =>
            reply.code(404).send({ handled: (error as Error).message }),
          );
          app.post('/missing', async () => {
            count('missing');
            throw new Error('no such thing');
          });
        },
        { cache: 'stripe' },
      );
      assert.equal((await send('/missing')).status, 404);
      const again = await send('/missing');
      assert.equal(again.status, 404);
      assert.equal(again.replayed, false);
      assert.equal(ran('missing'), 2);
    });

    it('a stream that fails while it is read releases the key', async () => {
      const { send, ran } = await start((app, count) => {
        app.post('/broken', async (_request, reply) => {
          count('broken');
          const body = Readable.from(
            (async function* () {
              yield Buffer.from('part');
              throw new Error('the stream broke');
            })(),
          );
          return reply.type('text/plain').send(body);
        });
      });
      assert.equal((await send('/broken')).status, 500);
      assert.equal((await send('/broken')).status, 500);
      assert.equal(ran('broken'), 2);
    });

    it('a hijacked reply cannot be captured, so its key is released', async () => {
      const { send, ran } = await start((app, count) => {
        app.post('/hijack', async (_request, reply) => {
          count('hijack');
          reply.hijack();
          reply.raw.writeHead(200, { 'content-type': 'text/plain' });
          reply.raw.end('by hand');
        });
      });
      assert.equal((await send('/hijack')).text, 'by hand');
      await sleep(20); // the release runs on the raw response's close, after the client has its reply
      const again = await send('/hijack');
      assert.equal(again.replayed, false);
      assert.equal(ran('hijack'), 2);
    });
  });

  describe('client gone', () => {
    it('keeps the key of a request whose client went away: the handler finishes and its response is kept', async () => {
      const { url, send, ran } = await start((app, count) => {
        app.post('/slow', async (_request, reply) => {
          const n = count('slow');
          await sleep(300);
          reply.code(201);
          return { n };
        });
      });
      const socket = connect(Number(new URL(url).port), '127.0.0.1');
      const body = '{"amount":1}';
      socket.write(
        [
          'POST /slow HTTP/1.1',
          'Host: localhost',
          'Idempotency-Key: key-1',
          'Content-Type: application/json',
          `Content-Length: ${body.length}`,
          '',
          body,
        ].join('\r\n'),
      );
      await sleep(100);
      socket.destroy();
      const during = await send('/slow', { body });
      assert.equal(during.status, 409, 'still in progress, not released by the disconnect');
      await sleep(350);
      const after = await send('/slow', { body });
      assert.equal(after.replayed, true);
      assert.deepEqual(JSON.parse(after.text), { n: 1 });
      assert.equal(ran('slow'), 1);
    });
  });

  describe('request body', () => {
    it('fingerprints the raw bytes of an octet-stream body, even when the handler ignores it', async () => {
      const { send, ran } = await start((app, count) => {
        app.post('/upload', async () => ({ n: count('upload') }));
      });
      const bytes = randomBytes(200_000); // several chunks on the wire
      const type = 'application/octet-stream';
      assert.equal((await send('/upload', { body: bytes, type })).status, 200);
      assert.equal((await send('/upload', { body: bytes, type })).replayed, true);
      const changed = Buffer.from(bytes);
      changed[150_000] = (changed[150_000]! + 1) % 256;
      const mismatch = await send('/upload', { body: changed, type });
      assert.equal(mismatch.status, 422);
      assert.match(mismatch.text, /ERR_ONCELY_KEY_REUSED/);
      assert.equal(ran('upload'), 1);
    });

    it('hands the parser the same bytes and keeps bodyLimit: an oversized body is refused, not recorded', async () => {
      const { app, send, ran } = await start((app, count) => {
        app.post('/sized', { bodyLimit: 1000 }, async (request) => ({
          n: count('sized'),
          length: (request.body as Buffer).byteLength,
        }));
      });
      const type = 'application/octet-stream';
      assert.equal((await send('/sized', { body: Buffer.alloc(2000), type })).status, 413);
      const fits = await send('/sized', { body: Buffer.alloc(1000), type });
      assert.deepEqual(JSON.parse(fits.text), { n: 1, length: 1000 });
      assert.equal(ran('sized'), 1);
      assert.ok(app.hasContentTypeParser('application/octet-stream'));
    });

    it('passes a body that the parser leaves to the handler through whole (fingerprinted without it)', async () => {
      const { send, ran } = await start((app, count) => {
        app.addContentTypeParser('application/x-ndjson', (_request, payload, done) => done(null, payload));
        app.post('/ingest', async (request) => {
          count('ingest');
          let length = 0;
          for await (const chunk of request.body as AsyncIterable<Buffer>) length += chunk.byteLength;
          return { length };
        });
      });
      const body = '{"a":1}\n'.repeat(10_000);
      const first = await send('/ingest', { body, type: 'application/x-ndjson' });
      assert.deepEqual(JSON.parse(first.text), { length: body.length });
      assert.equal((await send('/ingest', { body, type: 'application/x-ndjson' })).replayed, true);
      assert.equal(ran('ingest'), 1);
    });
  });
});
