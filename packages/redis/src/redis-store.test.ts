import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeStoreContract } from '@oncely/conformance';
import {
  type AcquireInput,
  createOncely,
  type IdempotencyRecord,
  memoryStore,
  OncelyError,
  recordId,
  type Store,
  type StoredResponse,
  tieredStore,
} from '@oncely/core';
import { Redis } from 'ioredis';
import { createClientPool } from 'redis';
import {
  fromIoredis,
  fromNodeRedis,
  REDIS_DEFAULTS,
  type RedisClient,
  type RedisCommands,
  redisStore,
} from './index.ts';
import { connectIoredis, connectNodeRedis, deleteKeys, type NodeRedis, REDIS_URL } from './test-redis.ts';

type Connection = { client: RedisClient; close(): Promise<void> };

/** The contract against the real server, with one kind of client; every key it made is deleted after. */
function contract(
  name: string,
  connect: () => Promise<Connection>,
  make: (client: RedisClient, prefix: string) => Store = (client, prefix) => redisStore({ client, prefix }),
): void {
  describe(name, () => {
    let connection: Connection | undefined;
    let admin: Redis | undefined;
    const prefixes: string[] = [];
    before(async () => {
      admin = await connectIoredis();
      connection = await connect();
    });
    describeStoreContract({
      name,
      create: ({ namespace }) => {
        if (!connection) throw new Error('not connected to Redis: see the failure of the before hook');
        prefixes.push(`${namespace}:`);
        return make(connection.client, `${namespace}:`);
      },
      inspectable: true,
      cleanup: async () => {
        if (admin) for (const prefix of prefixes) await deleteKeys(admin, prefix);
        admin?.disconnect();
        await connection?.close();
      },
    });
  });
}

const ioredis = async (): Promise<Connection> => {
  const client = await connectIoredis();
  return { client, close: async () => client.disconnect() };
};

contract('redis (ioredis)', ioredis);

contract('redis (node-redis)', async () => {
  const client = await connectNodeRedis();
  return { client, close: () => client.close() };
});

contract('redis (node-redis, RESP3)', async () => {
  const client = await connectNodeRedis({ RESP: 3 });
  return { client, close: () => client.close() };
});

// The tiered layout: Redis as the RecordCache in front of a durable store (memory here; the durable
// stores run this suite in their own packages). Runs put and get under the whole contract.
contract('tiered (redis cache + memory)', ioredis, (client, prefix) =>
  tieredStore({ cache: redisStore({ client, prefix }), durable: memoryStore({ sweepIntervalMs: 0 }) }),
);

const LEASE = 30_000;
const TTL = 86_400_000;
const newId = (): string => recordId('redis-store-test', randomBytes(12).toString('hex'));
const newToken = (): string => randomBytes(16).toString('hex');
const newKey = (): string => `key-${randomBytes(8).toString('hex')}`;
const acquireInput = (id: string, now: number, extra: Partial<AcquireInput> = {}): AcquireInput => ({
  id,
  fingerprint: 'fp',
  token: newToken(),
  now,
  leaseUntil: now + LEASE,
  expiresAt: now + TTL,
  ...extra,
});
const allBytes = (): Uint8Array => Uint8Array.from({ length: 256 }, (_, i) => i);

function completedRecord(id: string, now: number, response: StoredResponse | null): IdempotencyRecord {
  return {
    id,
    state: 'completed',
    fingerprint: 'fp-put',
    token: newToken(),
    leaseUntil: now,
    expiresAt: now + TTL,
    response,
  };
}

function isInvalidOption(error: unknown): boolean {
  assert.ok(error instanceof OncelyError, `expected an OncelyError, got ${String(error)}`);
  assert.equal(error.code, 'ERR_ONCELY_INVALID_OPTION');
  return true;
}

describe('redisStore', () => {
  let admin: Redis;
  let nodeRedis: NodeRedis;
  const prefix = `test-${randomBytes(4).toString('hex')}:`;
  before(async () => {
    admin = await connectIoredis();
    nodeRedis = await connectNodeRedis();
  });
  after(async () => {
    if (admin) await deleteKeys(admin, prefix);
    admin?.disconnect();
    await nodeRedis?.close();
  });
  const store = () => redisStore({ client: admin, prefix });
  const keyOf = (id: string): string => `${prefix}{${id}}`;

  it('keeps a record in one hash named <prefix>{<id>}, the body as raw bytes', async () => {
    const s = store();
    const id = newId();
    const now = Date.now();
    const { record } = await s.acquire(acquireInput(id, now));
    const body = allBytes();
    const headers: Array<[string, string]> = [
      ['content-type', 'application/octet-stream'],
      ['x-a', '1'],
      ['x-a', '2'],
    ];
    assert.equal(
      await s.complete({
        id,
        token: record.token,
        response: { status: 201, headers, body },
        now,
        expiresAt: now + TTL,
      }),
      true,
    );
    assert.deepEqual(await admin.keys(`${prefix}*${id}*`), [keyOf(id)]);
    assert.equal(await admin.type(keyOf(id)), 'hash');
    assert.deepEqual(await admin.hgetall(keyOf(id)), {
      state: 'completed',
      fingerprint: 'fp',
      token: record.token,
      leaseUntil: String(now + LEASE),
      expiresAt: String(now + TTL),
      status: '201',
      headers: JSON.stringify(headers),
      body: Buffer.from(body).toString(),
    });
    assert.deepEqual(await admin.hgetBuffer(keyOf(id), 'body'), Buffer.from(body), 'raw bytes, no encoding');
  });

  it('keeps the record no longer than its retention: PEXPIRE at acquire, again at completion', async () => {
    const s = store();
    const id = newId();
    const now = Date.now();
    const { record } = await s.acquire(acquireInput(id, now, { expiresAt: now + 60_000 }));
    const atAcquire = await admin.pttl(keyOf(id));
    assert.ok(atAcquire > 55_000 && atAcquire <= 60_000, `PTTL after acquire: ${atAcquire}`);
    await s.complete({ id, token: record.token, response: null, now, expiresAt: now + 5_000 });
    const atComplete = await admin.pttl(keyOf(id));
    assert.ok(atComplete > 0 && atComplete <= 5_000, `PTTL after complete: ${atComplete}`);

    const short = newId();
    await s.acquire(
      acquireInput(short, Date.now(), { leaseUntil: Date.now() + 50, expiresAt: Date.now() + 80 }),
    );
    assert.equal(await admin.exists(keyOf(short)), 1);
    await sleep(200);
    assert.equal(await admin.exists(keyOf(short)), 0, 'Redis dropped the record once it expired');
  });

  it('extend moves the lease only; release deletes the key', async () => {
    const s = store();
    const id = newId();
    const now = Date.now();
    const { record } = await s.acquire(acquireInput(id, now));
    const before = await admin.pttl(keyOf(id));
    assert.equal(await s.extend({ id, token: record.token, now, leaseUntil: now + 2 * LEASE }), true);
    assert.equal(await admin.hget(keyOf(id), 'leaseUntil'), String(now + 2 * LEASE));
    assert.equal(await admin.hget(keyOf(id), 'expiresAt'), String(now + TTL));
    assert.ok((await admin.pttl(keyOf(id))) <= before, 'extend leaves the retention alone');
    assert.equal(await s.release({ id, token: record.token }), true);
    assert.equal(await admin.exists(keyOf(id)), 0);
  });

  it('replaces an expired completed record whole: no field of the old response survives', async () => {
    const s = store();
    const id = newId();
    const now = Date.now();
    const { record } = await s.acquire(acquireInput(id, now));
    await s.complete({
      id,
      token: record.token,
      response: { status: 200, headers: [], body: allBytes() },
      now,
      expiresAt: now + TTL,
    });
    const later = now + TTL;
    const fresh = await s.acquire(acquireInput(id, later, { fingerprint: 'fp-2' }));
    assert.equal(fresh.acquired && !fresh.takeover, true);
    assert.deepEqual(Object.keys(await admin.hgetall(keyOf(id))).sort(), [
      'expiresAt',
      'fingerprint',
      'leaseUntil',
      'state',
      'token',
    ]);
    const ttl = await admin.pttl(keyOf(id));
    assert.ok(ttl > TTL - 5000 && ttl <= TTL, `a fresh TTL from the engine's now: ${ttl}`);
  });

  describe('as a RecordCache (put)', () => {
    it('put then get returns the record, all 256 byte values included, with either client', async () => {
      for (const client of [admin, nodeRedis]) {
        const s = redisStore({ client, prefix });
        const now = Date.now();
        const withBody = completedRecord(newId(), now, {
          status: 200,
          headers: [
            ['content-type', 'application/octet-stream'],
            ['x-r', 'caf\u00e9'],
          ],
          body: allBytes(),
        });
        const empty = completedRecord(newId(), now, { status: 204, headers: [], body: new Uint8Array() });
        const withoutResponse = completedRecord(newId(), now, null);
        for (const record of [withBody, empty, withoutResponse]) {
          await s.put({ record, now });
          const got = await s.get({ id: record.id, now });
          assert.deepEqual(got, record);
          if (got?.response) assert.equal(got.response.body.constructor, Uint8Array, 'a plain Uint8Array');
        }
        assert.deepEqual(await admin.hgetBuffer(keyOf(withBody.id), 'body'), Buffer.from(allBytes()));
      }
    });

    it('a put record is what acquire returns, whole, in its one round trip', async () => {
      const s = store();
      const now = Date.now();
      const record = completedRecord(newId(), now, { status: 201, headers: [['a', 'b']], body: allBytes() });
      await s.put({ record, now });
      const result = await s.acquire(acquireInput(record.id, now + 1, { fingerprint: 'fp-put' }));
      assert.equal(result.acquired, false);
      assert.deepEqual(result.record, record);
    });

    it('put sets a TTL up to expiresAt and overwrites what the key held', async () => {
      const s = store();
      const now = Date.now();
      const record = { ...completedRecord(newId(), now, allBytesResponse()), expiresAt: now + 10_000 };
      await s.put({ record, now });
      const pttl = await admin.pttl(keyOf(record.id));
      assert.ok(pttl > 0 && pttl <= 10_000, `PTTL ${pttl}`);

      const replacement = { ...record, response: null, token: newToken() };
      await s.put({ record: replacement, now });
      assert.deepEqual(await s.get({ id: record.id, now }), replacement);
      assert.equal(await admin.hexists(keyOf(record.id), 'body'), 0, 'no field of the old copy is left');
    });

    it('put of an already expired record deletes the old copy and writes nothing', async () => {
      const s = store();
      const now = Date.now();
      const record = completedRecord(newId(), now, allBytesResponse());
      await s.put({ record, now });
      await s.put({ record: { ...record, expiresAt: now - 1 }, now });
      assert.equal(await admin.exists(keyOf(record.id)), 0);
      assert.equal(await s.get({ id: record.id, now }), null);
    });

    it('get treats a record past expiresAt as absent before Redis drops it', async () => {
      const s = store();
      const now = Date.now();
      const record = completedRecord(newId(), now, allBytesResponse());
      await s.put({ record, now });
      assert.equal(await s.get({ id: record.id, now: record.expiresAt }), null);
      assert.equal(await admin.exists(keyOf(record.id)), 1, 'still held by Redis');
    });
  });

  it('serves a tiered store whose replays come from Redis', async () => {
    const durable = memoryStore({ sweepIntervalMs: 0 });
    const cache = store();
    const tiered = tieredStore({ cache, durable });
    const oncely = createOncely({ store: tiered });
    const key = `k-${randomBytes(6).toString('hex')}`;
    let runs = 0;
    assert.deepEqual(await oncely.run({ scope: 's', key }, () => ({ n: ++runs })), { n: 1 });
    await tiered.close(); // waits for the cache fill
    const id = recordId('s', key);
    assert.equal((await cache.get({ id, now: Date.now() }))?.state, 'completed');
    // Drop the durable copy: a replay must now come from Redis alone.
    await durable.close();
    const replaying = createOncely({
      store: tieredStore({ cache, durable: memoryStore({ sweepIntervalMs: 0 }) }),
    });
    assert.deepEqual(await replaying.run({ scope: 's', key }, () => ({ n: ++runs })), { n: 1 });
    assert.equal(runs, 1);
  });

  it('rejects every call after close() and leaves the client open', async () => {
    const s = store();
    await s.close();
    await s.close();
    const now = Date.now();
    const closed = /redisStore is closed/;
    await assert.rejects(s.acquire(acquireInput(newId(), now)), closed);
    await assert.rejects(s.get({ id: newId(), now }), closed);
    await assert.rejects(
      s.complete({ id: 'a', token: 't', response: null, now, expiresAt: now + 1 }),
      closed,
    );
    await assert.rejects(s.extend({ id: 'a', token: 't', now, leaseUntil: now + 1 }), closed);
    await assert.rejects(s.release({ id: 'a', token: 't' }), closed);
    await assert.rejects(s.put({ record: completedRecord('a', now, null), now }), closed);
    assert.equal(await admin.ping(), 'PONG');
    assert.equal(await nodeRedis.ping(), 'PONG');
  });

  it('needs only EVALSHA, EVAL, HMGET and, inside its scripts, HSET, HDEL, DEL, PEXPIRE on its prefix', async () => {
    const user = `oncely-test-${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    // biome-ignore format: the ACL rule, one grant a word
    await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, `~${prefix}*`,
      '+evalsha', '+eval', '+hmget', '+hset', '+hdel', '+del', '+pexpire');
    const url = new URL(REDIS_URL);
    url.username = user;
    url.password = password;
    // No INFO for this user: ioredis's ready check would need it.
    const limited = new Redis(url.toString(), { enableReadyCheck: false, lazyConnect: true });
    try {
      await limited.connect();
      const s = redisStore({ client: limited, prefix });
      const errors: unknown[] = [];
      const oncely = createOncely({
        store: s,
        onEvent: (event) => {
          if (event.type === 'store_error') errors.push(event.error);
        },
      });
      const key = newKey();
      assert.equal(await oncely.run({ key }, () => 'once'), 'once');
      assert.equal(await oncely.run({ key }, () => 'twice'), 'once');
      const decision = await oncely.begin({ key: newKey(), fingerprint: 'f' });
      assert.equal(decision.kind, 'execute');
      if (decision.kind === 'execute') await decision.abort();
      const now = Date.now();
      await s.put({ record: completedRecord(newId(), now, allBytesResponse()), now });
      // Not even an error that left the write in place (a script that fails after it wrote):
      // the change notification (PUBLISH) is not granted here, and must not fail a step.
      assert.deepEqual(errors, []);
      await assert.rejects(
        redisStore({ client: limited, prefix: 'elsewhere:' }).get({ id: newId(), now }),
        /NOPERM/,
      );
    } finally {
      limited.disconnect();
      await admin.call('ACL', 'DELUSER', user);
    }
  });

  describe('list and purgeExpired', () => {
    const fresh = () =>
      redisStore({ client: admin, prefix: `${prefix}list-${randomBytes(4).toString('hex')}:` });

    it('walks many SCAN steps with a small page: each record once, keys of other prefixes never', async () => {
      const s = fresh();
      const other = fresh();
      const now = Date.now();
      const ids = Array.from({ length: 600 }, newId);
      await Promise.all(ids.map((id) => s.acquire(acquireInput(id, now))));
      // Keys of another store, some under a prefix that starts with this one's.
      await Promise.all(Array.from({ length: 300 }, () => other.acquire(acquireInput(newId(), now))));
      const nested = redisStore({ client: admin, prefix: `${prefix}list-nested:` });
      await nested.acquire(acquireInput(newId(), now));
      const listed: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await s.list({ now, limit: 50, ...(cursor === undefined ? {} : { cursor }) });
        assert.ok(page.records.length <= 50);
        listed.push(...page.records.map((r) => r.id));
        cursor = page.cursor;
        pages++;
      } while (cursor !== undefined);
      assert.equal(new Set(listed).size, listed.length, 'no record twice');
      assert.deepEqual(listed.sort(), ids.sort());
      assert.ok(pages >= 12, `${pages} pages`);
    });

    it('purges nothing once Redis itself expired the records (PEXPIRE): it resolves with 0', async () => {
      const s = fresh();
      const now = Date.now();
      await s.acquire(acquireInput(newId(), now, { leaseUntil: now + 10, expiresAt: now + 20 }));
      await sleep(60);
      assert.deepEqual((await s.list({ now, limit: 10 })).records, [], 'the key is gone from Redis');
      assert.equal(await s.purgeExpired({ now: Date.now() }), 0);
    });

    it('refuses a cursor it did not make and a limit that is not a positive integer', async () => {
      const s = fresh();
      await assert.rejects(s.list({ now: Date.now(), limit: 10, cursor: 'not-a-cursor' }), RangeError);
      await assert.rejects(s.list({ now: Date.now(), limit: 0 }), RangeError);
      await assert.rejects(s.purgeExpired({ now: Date.now(), limit: 1.5 }), RangeError);
    });
  });

  describe('failures', () => {
    it('rejects when Redis fails, and the engine answers 503 without running the work', async () => {
      const down: RedisCommands = {
        send: async () => {
          throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
        },
      };
      const s = redisStore({ client: down });
      await assert.rejects(s.acquire(acquireInput(newId(), Date.now())), /ECONNREFUSED/);
      const decision = await createOncely({ store: s }).begin({ key: 'k', fingerprint: 'f' });
      assert.equal(decision.kind, 'reject');
      assert.equal(decision.kind === 'reject' && decision.error.code, 'ERR_ONCELY_STORE_UNAVAILABLE');
    });

    it('refuses a body that a client decoded to text instead of replaying wrong bytes', async () => {
      const now = Date.now();
      const record = completedRecord(newId(), now, allBytesResponse());
      await store().put({ record, now });
      // Fault injection: a RedisCommands that hands bulk strings back decoded as UTF-8.
      const decoding: RedisCommands = {
        send: async (command) => {
          const reply = await fromIoredis(admin).send(command);
          return Array.isArray(reply) ? reply.map((v) => (Buffer.isBuffer(v) ? v.toString() : v)) : reply;
        },
      };
      await assert.rejects(
        redisStore({ client: decoding, prefix }).get({ id: record.id, now }),
        /must return bulk strings as Buffer or Uint8Array/,
      );
    });

    it('refuses a key that holds something else than a record', async () => {
      const id = newId();
      await admin.hset(keyOf(id), 'state', 'done', 'expiresAt', String(Date.now() + TTL));
      await assert.rejects(store().get({ id, now: Date.now() }), /no valid state/);
      await admin.set(keyOf(id), 'a string');
      await assert.rejects(store().acquire(acquireInput(id, Date.now())), /WRONGTYPE/);
    });
  });

  describe('options', () => {
    it('has its defaults in REDIS_DEFAULTS', () => {
      assert.deepEqual({ ...REDIS_DEFAULTS }, { prefix: 'oncely:' });
      assert.ok(Object.isFrozen(REDIS_DEFAULTS));
    });

    it('uses the default prefix', async () => {
      const s = redisStore({ client: admin });
      const id = newId();
      const { record } = await s.acquire(acquireInput(id, Date.now()));
      assert.equal(await admin.hget(`oncely:{${id}}`, 'token'), record.token);
      assert.equal(await s.release({ id, token: record.token }), true);
    });

    it('accepts ioredis, node-redis (client, pool, typed proxy), their shims and any RedisCommands', async () => {
      const send: RedisCommands['send'] = (command) => fromIoredis(admin).send(command);
      const pool = createClientPool({ url: REDIS_URL }, { minimum: 1, maximum: 2 });
      pool.on('error', () => {});
      await pool.connect();
      try {
        const clients: RedisClient[] = [
          admin,
          nodeRedis,
          pool,
          // A client whose own commands decode to strings: the store's commands still get bytes.
          nodeRedis.withTypeMapping({}),
          fromIoredis(admin),
          fromNodeRedis(nodeRedis),
          { send },
        ];
        for (const client of clients) {
          const s = redisStore({ client, prefix });
          const now = Date.now();
          const record = completedRecord(newId(), now, allBytesResponse());
          await s.put({ record, now });
          assert.deepEqual(await s.get({ id: record.id, now }), record);
          assert.equal((await s.acquire(acquireInput(record.id, now))).acquired, false);
        }
      } finally {
        await pool.close();
      }
    });

    it('rejects unknown and invalid options with ERR_ONCELY_INVALID_OPTION', () => {
      const client = admin;
      const bad: unknown[] = [
        undefined,
        null,
        'redis://localhost',
        {},
        { client: undefined },
        { client: 'redis://localhost:6379' },
        { client: {} },
        { client: { get() {}, set() {} } },
        // A node-redis Sentinel: its sendCommand has another signature (use ioredis for Sentinel).
        { client: { sendCommand() {}, getSentinelNode() {} } },
        { client, prefx: 'typo' },
        { client, namespace: 'x' },
        { client, prefix: '' },
        { client, prefix: 7 },
        { client, prefix: 'app{1}:' },
        { client, prefix: 'a}' },
      ];
      for (const options of bad) {
        assert.throws(() => redisStore(options as never), isInvalidOption, String(JSON.stringify(options)));
      }
    });

    it('accepts undefined as the default', () => {
      assert.equal(redisStore({ client: admin, prefix: undefined }).name, 'redis');
    });
  });
});

function allBytesResponse(): StoredResponse {
  return { status: 200, headers: [], body: allBytes() };
}
