import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeHttpBehaviour } from '@oncely/conformance';
import { memoryStore, recordId, type Store } from '@oncely/core';
import { testStores } from '@oncely/test-stores';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { EXPRESS_DEFAULTS, idempotency } from './index.ts';
import { listen, startExpressTestServer } from './test-app.ts';

// The same suite on every store, over real HTTP: memory, SQLite, and the real Redis and PostgreSQL.
for (const kind of testStores()) {
  describeHttpBehaviour({ ...kind, name: `express + ${kind.name}`, start: startExpressTestServer });
}

/** A memory store that counts outcomes and can hold `complete` back, to see when the client gets the end. */
function countingStore(completeDelayMs = 0) {
  const inner = memoryStore({ sweepIntervalMs: 0 });
  const calls = { complete: 0, release: 0, completedAt: 0 };
  const store: Store = {
    name: 'counting',
    acquire: (input) => inner.acquire(input),
    extend: (input) => inner.extend(input),
    get: (input) => inner.get(input),
    close: () => inner.close(),
    complete: async (input) => {
      calls.complete++;
      await sleep(completeDelayMs);
      const ok = await inner.complete(input);
      calls.completedAt = Date.now();
      return ok;
    },
    release: (input) => {
      calls.release++;
      return inner.release(input);
    },
  };
  return { store, calls };
}

interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
}

async function post(
  base: string,
  path: string,
  key: string | null,
  body: string | Uint8Array | ReadableStream<Uint8Array> = '{"amount":1}',
  type = 'application/json',
): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': type };
  if (key !== null) headers['idempotency-key'] = key;
  const init: RequestInit & { duplex?: 'half' } = { method: 'POST', headers, body };
  if (body instanceof ReadableStream) init.duplex = 'half';
  const response = await fetch(new URL(path, base), init);
  const bytes = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body: bytes, text: bytes.toString() };
}

const replayed = (reply: Reply): boolean => reply.headers.get('idempotent-replayed') === 'true';
const code = (reply: Reply): unknown => (JSON.parse(reply.text) as { code?: unknown }).code;

/** An upload sent in several chunks without Content-Length (chunked transfer encoding). */
function chunkedBody(parts: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    async start(controller) {
      for (const part of parts) {
        controller.enqueue(part);
        await sleep(5);
      }
      controller.close();
    },
  });
}

/** Open a POST and resolve with the response as soon as its head arrives, body still streaming. */
function open(
  base: string,
  path: string,
  key: string,
): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, base), {
      method: 'POST',
      headers: { 'idempotency-key': key, 'content-type': 'application/json' },
    });
    req.on('response', (res) => resolve({ req, res }));
    req.on('error', reject);
    req.end('{}');
  });
}

describe('@oncely/express', () => {
  const servers: Array<() => Promise<void>> = [];
  after(async () => {
    for (const close of servers.splice(0)) await close();
  });
  async function serve(build: (app: Express) => void): Promise<string> {
    const app = express();
    app.set('env', 'test');
    build(app);
    const running = await listen(app);
    servers.push(running.close);
    return running.url;
  }

  it('works without any body parser: fingerprints the raw bytes and leaves the stream to the handler', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    let runs = 0;
    const url = await serve((app) => {
      app.use(idempotency({ store }));
      app.post('/echo', async (req, res) => {
        runs++;
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        res.type('application/octet-stream').send(Buffer.concat(chunks));
      });
    });
    const first = await post(url, '/echo', 'k1', '{"a":1,"b":[1,2]}');
    assert.equal(first.text, '{"a":1,"b":[1,2]}', 'the handler read every byte');
    const reordered = await post(url, '/echo', 'k1', '{ "b": [1, 2], "a": 1 }');
    assert.ok(replayed(reordered), 'the same JSON, written differently, is the same request');
    assert.equal(reordered.text, first.text);
    const changed = await post(url, '/echo', 'k1', '{"a":2,"b":[1,2]}');
    assert.equal(changed.status, 422);

    // A chunked upload of many parts, larger than one socket read, comes back byte for byte.
    const big = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256);
    const parts = [big.subarray(0, 100_000), big.subarray(100_000, 200_000), big.subarray(200_000)];
    const echoed = await post(url, '/echo', 'k2', chunkedBody(parts), 'application/octet-stream');
    assert.deepEqual(echoed.body, Buffer.from(big));
    const echoedAgain = await post(url, '/echo', 'k2', chunkedBody(parts), 'application/octet-stream');
    assert.ok(replayed(echoedAgain));
    big[123] = 0;
    assert.equal((await post(url, '/echo', 'k2', big, 'application/octet-stream')).status, 422);
    assert.equal(runs, 2);
    await store.close();
  });

  it('leaves the body to express.json() mounted after the middleware', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    let runs = 0;
    const url = await serve((app) => {
      app.use(idempotency({ store }), express.json(), express.urlencoded());
      app.post('/orders', (req, res) => {
        runs++;
        res.status(201).json({ received: req.body });
      });
    });
    const first = await post(url, '/orders', 'k1', '{"amount":7,"currency":"EUR"}');
    assert.equal(first.status, 201);
    assert.deepEqual(JSON.parse(first.text), { received: { amount: 7, currency: 'EUR' } });
    assert.ok(replayed(await post(url, '/orders', 'k1', '{"currency":"EUR", "amount":7}')));
    assert.equal(
      code(await post(url, '/orders', 'k1', '{"amount":8,"currency":"EUR"}')),
      'ERR_ONCELY_KEY_REUSED',
    );
    const form = await post(url, '/orders', 'k2', 'amount=9', 'application/x-www-form-urlencoded');
    assert.deepEqual(JSON.parse(form.text), { received: { amount: '9' } });
    assert.equal(runs, 2);
    await store.close();
  });

  it('with express.json() before it: fingerprints the parsed body, or req.rawBody when verify keeps it', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const runs = { parsed: 0, raw: 0 };
    const url = await serve((app) => {
      const keepRaw = express.json({
        verify: (req, _res, buffer) => {
          (req as unknown as { rawBody: Buffer }).rawBody = buffer;
        },
      });
      app.post('/parsed', express.json(), idempotency({ store }), (req, res) => {
        runs.parsed++;
        res.json(req.body);
      });
      app.post('/raw', keepRaw, idempotency({ store }), (req, res) => {
        runs.raw++;
        res.json(req.body);
      });
    });
    for (const path of ['/parsed', '/raw']) {
      const first = await post(url, path, `k${path}`, '{"amount":1.5,"note":"x"}');
      assert.deepEqual(JSON.parse(first.text), { amount: 1.5, note: 'x' });
      assert.ok(replayed(await post(url, path, `k${path}`, '{ "note": "x", "amount": 1.5 }')), path);
      assert.equal((await post(url, path, `k${path}`, '{"amount":2.5,"note":"x"}')).status, 422, path);
    }
    // What tells the two apart: 1.50 and 1.5 parse to one number, but are different bytes.
    assert.ok(replayed(await post(url, '/parsed', 'k/parsed', '{"amount":1.50,"note":"x"}')));
    assert.equal((await post(url, '/raw', 'k/raw', '{"amount":1.50,"note":"x"}')).status, 422);
    assert.deepEqual(runs, { parsed: 1, raw: 1 });
    await store.close();
  });

  it('with express.json() before it and no raw bytes, refuses to fingerprint a number JSON.parse rounded', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    let runs = 0;
    const errors: unknown[] = [];
    const url = await serve((app) => {
      app.post('/pay', express.json(), idempotency({ store }), (req, res) => {
        runs++;
        res.status(201).json(req.body);
      });
      app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
        errors.push(error);
        res.status(500).json({ error: 'setup' });
      });
    });
    const big = await post(url, '/pay', 'k-big', '{"amount":9007199254740993}');
    assert.equal(big.status, 500, 'the setup cannot tell 9007199254740993 from 9007199254740992');
    assert.equal((errors[0] as { code?: string }).code, 'ERR_ONCELY_INVALID_OPTION');
    assert.match(String((errors[0] as Error).message), /keepRawBody/);
    assert.equal(runs, 0, 'nothing ran');
    // Ordinary numbers still work in that setup.
    assert.equal((await post(url, '/pay', 'k-small', '{"amount":100}')).status, 201);
    assert.equal(runs, 1);
    await store.close();
  });

  it('fingerprints a JSON body alike whether express.json() runs before or after it', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    let runs = 0;
    const handler = (req: Request, res: Response) => {
      runs++;
      res.status(201).json({ n: runs, amount: req.body.amount });
    };
    const before = await serve((app) => app.post('/pay', express.json(), idempotency({ store }), handler));
    const afterIt = await serve((app) => app.post('/pay', idempotency({ store }), express.json(), handler));
    const first = await post(before, '/pay', 'k1', '{"amount":100,"to":"acct_1"}');
    const retry = await post(afterIt, '/pay', 'k1', '{"to":"acct_1","amount":100}');
    assert.ok(replayed(retry), 'one request, one fingerprint, wherever the parser is mounted');
    assert.equal(retry.text, first.text);
    assert.equal((await post(afterIt, '/pay', 'k1', '{"amount":101,"to":"acct_1"}')).status, 422);
    const second = await post(afterIt, '/pay', 'k2', '{"amount":5}');
    assert.ok(replayed(await post(before, '/pay', 'k2', '{"amount":5}')));
    assert.equal((await post(before, '/pay', 'k2', '{"amount":6}')).status, 422);
    assert.equal(JSON.parse(second.text).n, 2);
    assert.equal(runs, 2);
    await store.close();
  });

  it('passes res.write chunks through as written and holds the final end until the commit landed', async () => {
    const { store, calls } = countingStore(150);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const url = await serve((app) => {
      app.use(idempotency({ store }));
      app.post('/stream', async (_req, res) => {
        res.setHeader('Content-Type', 'text/plain');
        res.write('first;');
        await Promise.race([gate, sleep(2000)]);
        res.write(Buffer.from('second;'));
        res.end('last');
      });
    });
    const { res } = await open(url, '/stream', 'k1');
    const received: string[] = [];
    let endedAt = 0;
    const done = new Promise<void>((resolve) => {
      res.on('data', (chunk: Buffer) => {
        received.push(chunk.toString());
        release(); // the first chunk arrived while the handler still waits: it was not held back
      });
      res.on('end', () => {
        endedAt = Date.now();
        resolve();
      });
    });
    await done;
    assert.equal(received[0], 'first;');
    assert.equal(received.join(''), 'first;second;last');
    assert.equal(calls.complete, 1);
    assert.ok(
      calls.completedAt > 0 && endedAt >= calls.completedAt,
      'the client saw the end after the commit',
    );
    const again = await post(url, '/stream', 'k1', '{}');
    assert.ok(replayed(again));
    assert.equal(again.text, 'first;second;last');
    await store.close();
  });

  it('captures res.send(Buffer), res.sendStatus(204), writeHead, pipe, sendFile and repeated headers', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const fileDir = mkdtempSync(join(tmpdir(), 'oncely-express-file-'));
    const file = join(fileDir, 'file.txt');
    writeFileSync(file, 'from a file');
    const runs = new Map<string, number>();
    const count = (name: string) => runs.set(name, (runs.get(name) ?? 0) + 1);
    const url = await serve((app) => {
      app.use(idempotency({ store }));
      app.post('/buffer', (_req, res) => {
        count('buffer');
        res.send(Buffer.from([0, 1, 2, 254, 255]));
      });
      app.post('/no-content', (_req, res) => {
        count('no-content');
        res.sendStatus(204);
      });
      app.post('/write-head', (_req, res) => {
        count('write-head');
        res.writeHead(201, 'Made', { 'X-Head': 'h', 'Content-Type': 'text/plain' }).end('made');
      });
      app.post('/piped', (_req, res) => {
        count('piped');
        res.type('text/plain');
        Readable.from(['pi', 'ped']).pipe(res);
      });
      app.post('/file', (_req, res) => {
        count('file');
        res.sendFile(file);
      });
      app.post('/repeated', (_req, res) => {
        count('repeated');
        res.append('X-Multi', 'a').append('X-Multi', 'b').append('Set-Cookie', ['a=1', 'b=2']);
        res.writeHead(200, ['X-Listed', '1', 'X-Listed', '2']);
        res.end('{}');
      });
    });

    const buffer = await post(url, '/buffer', 'k1');
    const bufferAgain = await post(url, '/buffer', 'k1');
    assert.ok(replayed(bufferAgain));
    assert.deepEqual(bufferAgain.body, Buffer.from([0, 1, 2, 254, 255]));
    assert.equal(bufferAgain.headers.get('content-type'), buffer.headers.get('content-type'));
    assert.equal(bufferAgain.headers.get('etag'), buffer.headers.get('etag'));

    assert.equal((await post(url, '/no-content', 'k2')).status, 204);
    const noContent = await post(url, '/no-content', 'k2');
    assert.equal(noContent.status, 204);
    assert.ok(replayed(noContent), 'an empty 204 is a stored response');

    await post(url, '/write-head', 'k3');
    const head = await post(url, '/write-head', 'k3');
    assert.ok(replayed(head));
    assert.deepEqual([head.status, head.headers.get('x-head'), head.text], [201, 'h', 'made']);
    assert.equal(head.headers.get('content-type'), 'text/plain');

    for (const [path, text] of [
      ['/piped', 'piped'],
      ['/file', 'from a file'],
    ] as const) {
      assert.equal((await post(url, path, `k${path}`)).text, text);
      const replay = await post(url, path, `k${path}`);
      assert.ok(replayed(replay), path);
      assert.equal(replay.text, text);
    }

    const first = await post(url, '/repeated', 'k4');
    assert.deepEqual(first.headers.getSetCookie(), ['a=1', 'b=2']);
    const record = await store.get({ id: recordId('', 'k4'), now: Date.now() });
    const stored = record?.response?.headers.filter(([name]) => name === 'x-multi' || name === 'x-listed');
    assert.deepEqual(stored, [
      ['x-multi', 'a'],
      ['x-multi', 'b'],
      ['x-listed', '1'],
      ['x-listed', '2'],
    ]);
    const again = await post(url, '/repeated', 'k4');
    assert.ok(replayed(again));
    assert.equal(again.headers.get('x-multi'), 'a, b');
    assert.equal(again.headers.get('x-listed'), '1, 2');
    assert.deepEqual(again.headers.getSetCookie(), [], 'cookies are never replayed');
    assert.deepEqual([...runs.values()], [1, 1, 1, 1, 1, 1]);
    rmSync(fileDir, { recursive: true, force: true });
    await store.close();
  });

  it('frees the key when a handler calls next(err) or throws, whatever the cache policy and the error handler', async () => {
    const { store, calls } = countingStore();
    let runs = 0;
    const url = await serve((app) => {
      // Under 'stripe' every response is kept: only the error, not its status, frees these keys.
      app.use(express.json(), idempotency({ store, cache: 'stripe' }));
      app.post('/next-error', (_req, _res, next) => {
        runs++;
        next(new Error('payment provider down'));
      });
      app.post('/rejects', async () => {
        runs++;
        await sleep(1);
        throw Object.assign(new Error('no such account'), { status: 404 });
      });
      app.post('/mid-stream', (_req, res) => {
        runs++;
        res.write('partial');
        throw new Error('failed after the head was sent');
      });
      app.post('/ok', (_req, res) => {
        runs++;
        res.status(201).json({ ok: true });
      });
      app.use((error: Error, _req: Request, res: Response, next: NextFunction) => {
        if (error.message === 'no such account') res.status(404).json({ error: error.message });
        else next(error);
      });
    });
    assert.equal((await post(url, '/next-error', 'k1')).status, 500);
    assert.equal((await post(url, '/next-error', 'k1')).status, 500, 'ran again: the key was freed');
    assert.equal((await post(url, '/rejects', 'k2')).status, 404);
    const again = await post(url, '/rejects', 'k2');
    assert.equal(again.status, 404);
    assert.ok(!replayed(again), "an error handler's answer is not the handler's outcome");
    await post(url, '/mid-stream', 'k3').catch(() => {}); // Express closes the connection
    await sleep(20);
    assert.equal(calls.release, 5, 'released at once, not after a lease');
    assert.equal((await post(url, '/ok', 'k4')).status, 201);
    assert.ok(replayed(await post(url, '/ok', 'k4')));
    assert.equal(runs, 6);
    // Five failures, each released once; one success, completed once; the replay touched neither.
    assert.deepEqual({ complete: calls.complete, release: calls.release }, { complete: 1, release: 5 });
    await store.close();
  });

  it('commits a response after an earlier error was recovered from before the middleware', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    let runs = 0;
    const url = await serve((app) => {
      app.use((_req, _res, next) => next(new Error('optional enrichment failed')));
      app.use((_error: Error, _req: Request, _res: Response, next: NextFunction) => next()); // recovered
      app.use(idempotency({ store }));
      app.post('/ok', (_req, res) => {
        runs++;
        res.status(201).json({ runs });
      });
    });
    assert.equal((await post(url, '/ok', 'k1')).status, 201);
    assert.ok(replayed(await post(url, '/ok', 'k1')));
    assert.equal(runs, 1);
    await store.close();
  });

  it('keeps the key of a client that disconnects mid-response: the handler finishes and its retry replays', async () => {
    const { store, calls } = countingStore();
    let runs = 0;
    let finished: () => void = () => {};
    const handlerDone = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const url = await serve((app) => {
      app.use(idempotency({ store }));
      app.post('/report', async (_req, res) => {
        runs++;
        res.setHeader('Content-Type', 'text/plain');
        res.write('part 1;');
        await once(res, 'close'); // the client is gone; the work goes on
        res.write('part 2;');
        res.end('done');
        finished();
      });
    });
    const { res } = await open(url, '/report', 'k1');
    await once(res, 'data');
    res.destroy();
    await handlerDone;
    await sleep(20);
    const retry = await post(url, '/report', 'k1', '{}');
    assert.ok(replayed(retry), 'the work ran once and the retry gets its result');
    assert.equal(retry.text, 'part 1;part 2;done');
    assert.equal(runs, 1);
    assert.deepEqual({ complete: calls.complete, release: calls.release }, { complete: 1, release: 0 });
    await store.close();
  });

  it('keeps the key of a disconnected client whose handler never ends the response, until its execution bound and a lease', async () => {
    // Core's one disconnect policy: a client leaving never frees a key whose owner is alive. What
    // ends a handler that never finishes is the execution bound; then its lease lapses.
    const { store, calls } = countingStore();
    let runs = 0;
    const url = await serve((app) => {
      app.use(idempotency({ store, leaseMs: 200, maxExecutionMs: 300 }));
      app.post('/abandoned', async (_req, res) => {
        runs++;
        res.write('part 1;');
        await once(res, 'close'); // gives up without ending the response
      });
    });
    const started = Date.now();
    const { res } = await open(url, '/abandoned', 'k1');
    await once(res, 'data');
    res.destroy();
    await sleep(50);
    const early = await post(url, '/abandoned', 'k1', '{}');
    assert.equal(code(early), 'ERR_ONCELY_IN_PROGRESS', 'not freed while the handler may still be working');
    await sleep(Math.max(0, 380 - (Date.now() - started)));
    const beforeLapse = await post(url, '/abandoned', 'k1', '{}');
    assert.equal(
      code(beforeLapse),
      'ERR_ONCELY_IN_PROGRESS',
      'past the bound, the lease still runs out first',
    );
    await sleep(Math.max(0, 650 - (Date.now() - started)));
    const { res: second } = await open(url, '/abandoned', 'k1');
    assert.equal(second.headers['idempotent-replayed'], undefined);
    assert.equal(second.statusCode, 200);
    second.destroy();
    assert.equal(runs, 2);
    assert.equal(calls.release, 0, 'freed by the lapse, never released while its owner ran');
    assert.equal(calls.complete, 0);
    await sleep(250);
    await store.close();
  });

  it('keeps the key when the client left while the store was still deciding, until the bound and a lease', async () => {
    const { store: inner, calls } = countingStore();
    const store: Store = {
      ...inner,
      acquire: async (input) => {
        await sleep(80);
        return inner.acquire(input);
      },
    };
    let runs = 0;
    const url = await serve((app) => {
      // The acquire takes 80 ms: under half the lease, or the engine would answer 503 instead.
      app.use(idempotency({ store, leaseMs: 300, maxExecutionMs: 200 }));
      app.post('/late', () => {
        runs++; // never answers: its client is long gone
      });
    });
    const client = httpRequest(new URL('/late', url), {
      method: 'POST',
      headers: { 'idempotency-key': 'k1', 'content-type': 'application/json' },
    });
    client.on('error', () => {});
    client.end('{}');
    await sleep(20);
    client.destroy();
    await sleep(150);
    assert.equal(runs, 1, 'the handler runs although its client left');
    assert.equal((await store.get({ id: recordId('', 'k1'), now: Date.now() }))?.state, 'in_progress');
    await sleep(550); // acquire 80 ms + bound 200 ms + lease 300 ms, from the start
    const record = await store.get({ id: recordId('', 'k1'), now: Date.now() });
    assert.ok(
      record === null || record.leaseUntil <= Date.now(),
      'free once the bound passed and the lease lapsed',
    );
    assert.equal(calls.release, 0);
    await store.close();
  });

  it('takes per-route options from one instance per route, all sharing one store', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const shared = { store, scope: (req: Request) => req.get('x-tenant') };
    let runs = 0;
    const handler = (_req: Request, res: Response) => {
      runs++;
      res.status(201).json({ n: runs });
    };
    const url = await serve((app) => {
      app.use(express.json());
      app.post('/strict', idempotency({ ...shared, required: true }), handler);
      app.post('/lenient', idempotency(shared), handler);
      // Mounted globally and on the route: the first instance that records a request owns it.
      app.use('/both', idempotency(shared));
      app.post('/both', idempotency({ ...shared, required: true }), handler);
    });
    assert.equal(code(await post(url, '/strict', null)), 'ERR_ONCELY_KEY_MISSING');
    assert.equal((await post(url, '/lenient', null)).status, 201);
    assert.equal((await post(url, '/strict', 'k1')).status, 201);
    assert.ok(replayed(await post(url, '/strict', 'k1')));
    assert.equal(code(await post(url, '/both', null)), 'ERR_ONCELY_KEY_MISSING');
    assert.equal((await post(url, '/both', 'k2')).status, 201, 'not a 409 from the second instance');
    assert.ok(replayed(await post(url, '/both', 'k2')));
    assert.equal(runs, 3);
    await store.close();
  });

  it('gives handlers the signal and the parsed key on req.idempotency, only for recorded requests', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const url = await serve((app) => {
      app.use(idempotency({ store }));
      app.post('/x', (req, res) => {
        const signal = req.idempotency?.signal;
        res.json({
          recorded: signal instanceof AbortSignal,
          aborted: signal?.aborted ?? null,
          key: req.idempotency?.key ?? null,
          keyHash: req.idempotency?.keyHash ?? null,
        });
      });
    });
    assert.deepEqual(JSON.parse((await post(url, '/x', '"k1"')).text), {
      recorded: true,
      aborted: false,
      key: 'k1',
      keyHash: recordId('', 'k1'),
    });
    assert.deepEqual(JSON.parse((await post(url, '/x', null)).text), {
      recorded: false,
      aborted: null,
      key: null,
      keyHash: null,
    });
    await store.close();
  });

  it('refuses a body over maxBodyBytes with 413 before taking the key', async () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    let runs = 0;
    const url = await serve((app) => {
      app.use(idempotency({ store, maxBodyBytes: 16 }));
      app.post('/small', (_req, res) => {
        runs++;
        res.json({ runs });
      });
    });
    assert.equal((await post(url, '/small', 'k1', '{"amount":12345678}')).status, 413);
    const chunked = chunkedBody([Buffer.from('{"amount":'), Buffer.from('12345678}')]);
    assert.equal((await post(url, '/small', 'k1', chunked)).status, 413, 'also without Content-Length');
    assert.equal((await post(url, '/small', 'k1', '{"amount":1}')).status, 200, 'the key was never taken');
    assert.equal((await post(url, '/small', null, '{"amount":12345678}')).status, 200, 'no key, no limit');
    assert.equal(runs, 2);
    await store.close();
  });

  it('rejects invalid options at construction', () => {
    const store = memoryStore({ sweepIntervalMs: 0 });
    const invalid = { code: 'ERR_ONCELY_INVALID_OPTION' };
    assert.throws(() => idempotency({ store, ttl: 5 } as never), invalid);
    assert.throws(() => idempotency({ store, scope: 'x-tenant' } as never), invalid);
    assert.throws(() => idempotency({ store, maxBodyBytes: -1 }), invalid);
    assert.throws(() => idempotency(null as never), invalid);
    assert.equal(EXPRESS_DEFAULTS.maxBodyBytes, 1024 * 1024);
  });
});
