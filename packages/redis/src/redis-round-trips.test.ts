/**
 * Round trips, counted: every command the store sends goes through a counting `RedisCommands`.
 * The NOSCRIPT tests flush the script cache of a Redis server of their own.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createOncely, recordId } from '@oncely/core';
import type { Redis } from 'ioredis';
import { fromIoredis, fromNodeRedis, type RedisCommands, redisStore } from './index.ts';
import { ACQUIRE, COMPLETE, EXTEND, PUT, RELEASE } from './lua-scripts.ts';
import { startCluster, type TestCluster } from './test-cluster.ts';
import { connectIoredis, connectNodeRedis, counting, deleteKeys, type NodeRedis } from './test-redis.ts';

const prefix = `test-rt-${randomBytes(4).toString('hex')}:`;
const newKey = (): string => `key-${randomBytes(8).toString('hex')}`;

let admin: Redis;
let nodeRedis: NodeRedis;
before(async () => {
  admin = await connectIoredis();
  nodeRedis = await connectNodeRedis();
});
after(async () => {
  if (admin) await deleteKeys(admin, prefix);
  admin?.disconnect();
  await nodeRedis?.close();
});

const clients: Array<[string, () => RedisCommands]> = [
  ['ioredis', () => fromIoredis(admin)],
  ['node-redis', () => fromNodeRedis(nodeRedis)],
];

describe('one round trip per step, counted through createOncely', () => {
  before(async () => {
    // The script cache may be empty (a fresh server, another test's SCRIPT FLUSH): load every script
    // first, so what is counted is the steady state, not the first NOSCRIPT fallback.
    for (const script of [ACQUIRE, COMPLETE, EXTEND, RELEASE, PUT]) {
      assert.equal(await admin.script('LOAD', script.source), script.sha);
    }
  });

  for (const [name, commands] of clients) {
    it(`first execution: 2 commands (acquire, complete); replay: 1 (${name})`, async () => {
      const wire = counting(commands());
      const oncely = createOncely({ store: redisStore({ client: wire, prefix }) });
      const key = newKey();
      let runs = 0;
      // The work is much quicker than leaseMs / 3 (10 s by default): no lease renewal is due.
      assert.deepEqual(await oncely.run({ key }, () => ({ runs: ++runs })), { runs: 1 });
      assert.deepEqual(wire.sent, ['EVALSHA', 'EVALSHA']);

      wire.sent.length = 0;
      assert.deepEqual(await oncely.run({ key }, () => ({ runs: ++runs })), { runs: 1 });
      assert.deepEqual(wire.sent, ['EVALSHA'], 'a replay is the acquire alone: it returns the record');
      assert.equal(runs, 1);
    });

    it(`409 conflict: 1 command; 422 mismatch: 1; abort: 1 (release) (${name})`, async () => {
      const wire = counting(commands());
      const oncely = createOncely({ store: redisStore({ client: wire, prefix }) });
      const key = newKey();
      const first = await oncely.begin({ key, fingerprint: 'f' });
      assert.equal(first.kind, 'execute');

      wire.sent.length = 0;
      const second = await oncely.begin({ key, fingerprint: 'f' });
      assert.equal(second.kind === 'reject' && second.error.code, 'ERR_ONCELY_IN_PROGRESS');
      assert.deepEqual(wire.sent, ['EVALSHA']);

      wire.sent.length = 0;
      const other = await oncely.begin({ key, fingerprint: 'other' });
      assert.equal(other.kind === 'reject' && other.error.code, 'ERR_ONCELY_KEY_REUSED');
      assert.deepEqual(wire.sent, ['EVALSHA']);

      wire.sent.length = 0;
      if (first.kind === 'execute') await first.abort(new Error('work failed'));
      assert.deepEqual(wire.sent, ['EVALSHA'], 'abort is one release');
      assert.equal(await redisStore({ client: admin, prefix }).get({ id: recordId('', key), now: 0 }), null);
    });
  }
});

describe('NOSCRIPT fallback', () => {
  // SCRIPT FLUSH is server-wide: on the shared server another test file could load a script again
  // between the flush and the step counted here. These tests get a Redis of their own.
  let server: TestCluster | undefined;
  let admin: Redis;
  let nodeRedis: NodeRedis;
  before(async () => {
    server = await startCluster({ masters: 1, cluster: false });
    const url = `redis://127.0.0.1:${server.ports[0]}`;
    admin = await connectIoredis(url);
    nodeRedis = await connectNodeRedis({ url });
  });
  after(async () => {
    admin?.disconnect();
    await nodeRedis?.close();
    await server?.stop();
  });
  const clients: Array<[string, () => RedisCommands]> = [
    ['ioredis', () => fromIoredis(admin)],
    ['node-redis', () => fromNodeRedis(nodeRedis)],
  ];

  it('runs a step with EVAL when the server lost its scripts, then is back to EVALSHA', async () => {
    const wire = counting(fromIoredis(admin));
    const store = redisStore({ client: wire, prefix });
    const oncely = createOncely({ store });
    assert.equal(await admin.script('FLUSH'), 'OK');

    const key = newKey();
    assert.deepEqual(await oncely.run({ key }, () => 'ran'), 'ran');
    assert.deepEqual(
      wire.sent,
      ['EVALSHA', 'EVAL', 'EVALSHA', 'EVAL'],
      'acquire and complete, each refused once',
    );
    assert.deepEqual(
      await admin.script('EXISTS', ACQUIRE.sha, COMPLETE.sha),
      [1, 1],
      'EVAL cached them again',
    );

    wire.sent.length = 0;
    assert.deepEqual(await oncely.run({ key }, () => 'again'), 'ran');
    assert.deepEqual(wire.sent, ['EVALSHA']);
  });

  it('falls back for every step, with either client', async () => {
    for (const [name, commands] of clients) {
      const wire = counting(commands());
      const store = redisStore({ client: wire, prefix });
      const id = recordId('noscript', newKey());
      const now = Date.now();
      const record = {
        id,
        state: 'in_progress' as const,
        fingerprint: 'f',
        token: 'u',
        leaseUntil: now + 1000,
        expiresAt: now + 60_000,
        response: null,
      };
      const steps: Array<[string, () => Promise<unknown>, unknown]> = [
        ['acquire', async () => (await store.acquire({ ...record, token: 't', now })).acquired, true],
        ['extend', () => store.extend({ id, token: 't', now, leaseUntil: now + 2000 }), true],
        [
          'complete',
          () => store.complete({ id, token: 't', response: null, now, expiresAt: now + 60_000 }),
          true,
        ],
        ['put', () => store.put({ record, now }), undefined],
        ['release', () => store.release({ id, token: 'u' }), true],
      ];
      for (const [step, run, expected] of steps) {
        await admin.script('FLUSH');
        wire.sent.length = 0;
        assert.equal(await run(), expected, `${step} after SCRIPT FLUSH (${name})`);
        assert.deepEqual(wire.sent, ['EVALSHA', 'EVAL'], `${step} (${name})`);
      }
      assert.equal(await store.get({ id, now }), null);
    }
  });

  it('does not retry any other error, nor a failing EVAL', async () => {
    const sent: string[] = [];
    const failing = (reply: (name: string) => unknown): RedisCommands => ({
      send: async ({ args }) => {
        const name = String(args[0]);
        sent.push(name);
        const result = reply(name);
        if (result instanceof Error) throw result;
        return result;
      },
    });
    const now = Date.now();
    const input = { id: 'x', fingerprint: 'f', token: 't', now, leaseUntil: now + 1, expiresAt: now + 2 };

    const busy = redisStore({ client: failing(() => new Error('BUSY Redis is busy running a script')) });
    await assert.rejects(busy.acquire(input), /^Error: BUSY/);
    assert.deepEqual(sent, ['EVALSHA']);

    sent.length = 0;
    const lost = redisStore({
      client: failing((name) =>
        name === 'EVALSHA'
          ? new Error('NOSCRIPT No matching script. Please use EVAL.')
          : new Error('connect ECONNRESET'),
      ),
    });
    await assert.rejects(lost.acquire(input), /ECONNRESET/);
    assert.deepEqual(sent, ['EVALSHA', 'EVAL'], 'one fallback, never a loop');
  });
});
