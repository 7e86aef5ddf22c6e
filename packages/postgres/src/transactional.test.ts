import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createOncely,
  isOncelyError,
  OncelyError,
  type OncelyEvent,
  recordId,
  type StoredResponse,
} from '@oncely/core';
import type pg from 'pg';
import { type PostgresStore, postgresStore, TRANSACTIONAL_DEFAULTS, transactional } from './index.ts';
import { countRows, dropTables, testPool, uniqueName } from './test-database.ts';

const TTL = 86_400_000;

function isCode(code: string) {
  return (error: unknown): boolean => {
    assert.ok(isOncelyError(error), `expected an OncelyError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  };
}

const json = (status: number, value: unknown, headers: Array<[string, string]> = []): StoredResponse => ({
  status,
  headers: [['content-type', 'application/json'], ...headers],
  body: new TextEncoder().encode(JSON.stringify(value)),
});

describe('transactional', () => {
  let pool: pg.Pool;
  const table = uniqueName('oncely_tx');
  const payments = uniqueName('payments_tx');
  before(async () => {
    pool = await testPool({ max: 20 });
    await postgresStore({ pool, table }).migrate();
    await pool.query(`CREATE TABLE ${payments} (
      id bigserial PRIMARY KEY,
      key text NOT NULL,
      amount integer NOT NULL,
      ref text UNIQUE DEFERRABLE INITIALLY DEFERRED
    )`);
  });
  after(async () => {
    await dropTables(pool, table, payments);
    await pool.end();
  });

  /** A store on its own namespace, its engine, and transactional mode over them. */
  const setup = (engine: Omit<Parameters<typeof createOncely>[0], 'store'> = {}) => {
    const namespace = uniqueName('ns');
    const store = postgresStore({ pool, table, namespace, sweepIntervalMs: 0 });
    const events: OncelyEvent[] = [];
    const oncely = createOncely({ store, onEvent: (event) => events.push(event), ...engine });
    const tx = transactional({ oncely, store, pool });
    return { store, oncely, tx, events, namespace };
  };
  const paymentsFor = (key: string): Promise<number> => countRows(pool, payments, 'key = $1', [key]);
  const insertPayment = (client: pg.PoolClient, key: string, amount = 500) =>
    client.query(`INSERT INTO ${payments} (key, amount) VALUES ($1, $2) RETURNING id::int`, [key, amount]);

  it('commits the work and the record together; a replay returns the stored result without running', async () => {
    const { tx, oncely, store } = setup();
    const key = uniqueName('key');
    let runs = 0;
    const work = async (client: pg.PoolClient) => {
      runs++;
      const { rows } = await insertPayment(client, key);
      return { id: rows[0].id as number, status: 'succeeded' };
    };
    const first = await tx.run({ scope: 'tenant', key }, work);
    const again = await tx.run({ scope: 'tenant', key }, work);
    assert.deepEqual(again, first);
    assert.equal(runs, 1);
    assert.equal(await paymentsFor(key), 1);
    const decision = await oncely.begin({ scope: 'tenant', key, fingerprint: '' });
    assert.equal(decision.kind, 'replay', 'the plain engine replays it too');
    const record = await store.get({ id: decision.keyHash, now: Date.now() });
    assert.equal(record?.state, 'completed');
  });

  it('runs the work in READ COMMITTED whatever the role default, on the connection it passes', async () => {
    const strict = await testPool({ max: 4, options: '-c default_transaction_isolation=serializable' });
    try {
      const store = postgresStore({ pool: strict, table, namespace: uniqueName('ns'), sweepIntervalMs: 0 });
      const tx = transactional({ oncely: createOncely({ store }), store, pool: strict });
      const seen = await tx.run({ key: uniqueName('key') }, async (client) => {
        const level = await client.query('SHOW transaction_isolation');
        // Two statements see one transaction id only inside one transaction.
        const first = await client.query('SELECT pg_current_xact_id()::text AS xid');
        const second = await client.query('SELECT pg_current_xact_id()::text AS xid');
        return {
          level: level.rows[0].transaction_isolation,
          inTransaction: first.rows[0].xid === second.rows[0].xid,
        };
      });
      assert.deepEqual(seen, { level: 'read committed', inTransaction: true });
    } finally {
      await strict.end();
    }
  });

  it('execute: returns the response, stores it minus set-cookie, and replays it marked as such', async () => {
    const { tx } = setup();
    const key = uniqueName('key');
    const input = { scope: 'tenant', key, fingerprint: 'fp' };
    const first = await tx.execute(input, async (client) => {
      const { rows } = await insertPayment(client, key);
      return json(201, { id: rows[0].id }, [
        ['location', `/payments/${rows[0].id}`],
        ['set-cookie', 'session=secret'],
      ]);
    });
    assert.equal(first.replayed, false);
    assert.equal(first.response.status, 201);
    assert.ok(
      first.response.headers.some(([name]) => name === 'set-cookie'),
      'the first response is untouched',
    );
    const replay = await tx.execute(input, () => assert.fail('a replay must not run the work'));
    assert.equal(replay.replayed, true);
    assert.equal(replay.response.status, 201);
    assert.deepEqual(Buffer.from(replay.response.body), Buffer.from(first.response.body));
    assert.deepEqual(replay.response.headers, [
      ['content-type', 'application/json'],
      ['location', first.response.headers[1]![1]],
      ['idempotent-replayed', 'true'],
    ]);
    await assert.rejects(
      tx.execute({ ...input, fingerprint: 'other' }, () => assert.fail('never runs')),
      isCode('ERR_ONCELY_KEY_REUSED'),
    );
    assert.equal(await paymentsFor(key), 1);
  });

  it('rolls back and frees the key when the work throws; the retry runs again', async () => {
    const { tx, events } = setup();
    const key = uniqueName('key');
    const boom = new Error('provider said no');
    await assert.rejects(
      tx.run({ key }, async (client) => {
        await insertPayment(client, key);
        throw boom;
      }),
      (error) => error === boom,
    );
    assert.equal(await paymentsFor(key), 0, 'the insert was rolled back');
    assert.ok(events.some((e) => e.type === 'released'));
    const retried = await tx.run({ key }, async (client) => (await insertPayment(client, key)).rows[0].id);
    assert.equal(typeof retried, 'number');
    assert.equal(await paymentsFor(key), 1);
  });

  it('rolls back when the work left the transaction failed, and frees the key', async () => {
    const { tx, store } = setup();
    const key = uniqueName('key');
    await assert.rejects(
      tx.run({ key }, async (client) => {
        await insertPayment(client, key);
        // An SQL error the work swallows still aborts the transaction: the completion then fails.
        await client.query('SELECT 1/0').catch(() => {});
        return 'ok';
      }),
      /current transaction is aborted/,
    );
    assert.equal(await paymentsFor(key), 0);
    const again = await tx.run({ key }, () => 'second');
    assert.equal(again, 'second');
    assert.equal((await store.get({ id: recordId('', key), now: Date.now() }))?.state, 'completed');
  });

  it('rolls back and throws ERR_ONCELY_LEASE_LOST when the key was taken over before COMMIT', async () => {
    const { tx, store, events } = setup();
    const key = uniqueName('key');
    let stolen = '';
    await assert.rejects(
      tx.run({ key }, async (client) => {
        await insertPayment(client, key);
        // Another request takes the key over, as if our lease had lapsed (its clock is far ahead).
        const id = recordId('', key);
        const later = Date.now() + 10 * 60_000;
        const thief = await store.acquire({
          id,
          fingerprint: '',
          token: 'thief',
          now: later,
          leaseUntil: later + 30_000,
          expiresAt: later + TTL,
        });
        assert.equal(thief.acquired && thief.takeover, true);
        stolen = id;
        return 'mine';
      }),
      isCode('ERR_ONCELY_LEASE_LOST'),
    );
    assert.equal(await paymentsFor(key), 0, 'our writes vanished: the new owner does them');
    const record = await store.get({ id: stolen, now: Date.now() });
    assert.deepEqual([record?.token, record?.state], ['thief', 'in_progress'], 'the new owner is untouched');
    assert.ok(events.some((e) => e.type === 'lease_lost'));
  });

  it('rolls back a response the cache policy does not keep, and frees the key', async () => {
    const { tx } = setup();
    const key = uniqueName('key');
    const declined = await tx.execute({ key, fingerprint: 'fp' }, async (client) => {
      await insertPayment(client, key);
      return json(402, { error: 'card_declined' });
    });
    assert.deepEqual([declined.replayed, declined.response.status], [false, 402]);
    assert.equal(await paymentsFor(key), 0, 'no record, so no writes: a retry runs again and finds nothing');
    const retry = await tx.execute({ key, fingerprint: 'fp' }, async (client) => {
      await insertPayment(client, key);
      return json(201, { ok: true });
    });
    assert.equal(retry.response.status, 201);
    assert.equal(await paymentsFor(key), 1);
  });

  it('commits a response too large to keep, and a retry is told it ran', async () => {
    const { tx } = setup({ maxResponseBytes: 10 });
    const key = uniqueName('key');
    await tx.run({ key }, async (client) => {
      await insertPayment(client, key);
      return 'a result longer than ten bytes';
    });
    assert.equal(await paymentsFor(key), 1);
    await assert.rejects(
      tx.run({ key }, () => assert.fail('never runs')),
      isCode('ERR_ONCELY_RESPONSE_NOT_STORED'),
    );
  });

  it('frees the key when the server refuses the COMMIT (a deferred constraint), writes and record both gone', async () => {
    const { tx, store, events } = setup();
    const key = uniqueName('key');
    const ref = uniqueName('ref');
    await assert.rejects(
      tx.run({ key }, async (client) => {
        // The unique check on ref is deferred to COMMIT: the completion UPDATE succeeds, COMMIT fails.
        await client.query(`INSERT INTO ${payments} (key, amount, ref) VALUES ($1, 1, $2), ($1, 2, $2)`, [
          key,
          ref,
        ]);
        return 'never kept';
      }),
      (error: { code?: string }) => error.code === '23505',
    );
    assert.ok(
      events.some((e) => e.type === 'completed'),
      'the completion UPDATE had succeeded',
    );
    assert.equal(await paymentsFor(key), 0);
    assert.equal(await store.get({ id: recordId('', key), now: Date.now() }), null, 'key freed');
    assert.equal(await tx.run({ key }, () => 'retried'), 'retried');
  });

  it('refuses a concurrent duplicate with 409 while the first is in its transaction', async () => {
    const { tx } = setup();
    const key = uniqueName('key');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered!: () => void;
    const inWork = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const first = tx.run({ key }, async (client) => {
      await insertPayment(client, key);
      entered();
      await gate;
      return 'first';
    });
    await inWork;
    await assert.rejects(
      tx.run({ key }, () => 'second'),
      isCode('ERR_ONCELY_IN_PROGRESS'),
    );
    release();
    assert.equal(await first, 'first');
    assert.equal(await tx.run({ key }, () => 'third'), 'first');
  });

  it('runs once among 30 concurrent calls of one key, with concurrency: wait', async () => {
    const { tx } = setup({ concurrency: 'wait', waitPollMs: 10 });
    const key = uniqueName('key');
    let runs = 0;
    const results = await Promise.all(
      Array.from({ length: 30 }, () =>
        tx.run({ key }, async (client) => {
          runs++;
          await sleep(50);
          return (await insertPayment(client, key)).rows[0].id as number;
        }),
      ),
    );
    assert.equal(runs, 1);
    assert.equal(new Set(results).size, 1, 'every caller got the one result');
    assert.equal(await paymentsFor(key), 1);
  });

  it('keeps renewing the lease from another connection while a long transaction runs', async () => {
    // leaseMs 300: renewals every 100 ms on the store's pool, while the work holds its own connection
    // for a second. A pool of 2 is enough.
    const small = await testPool({ max: 2 });
    try {
      const store = postgresStore({ pool: small, table, namespace: uniqueName('ns'), sweepIntervalMs: 0 });
      const events: OncelyEvent[] = [];
      const tx = transactional({
        oncely: createOncely({ store, leaseMs: 300, onEvent: (e) => events.push(e) }),
        store,
      });
      const key = uniqueName('key');
      const started = Date.now();
      let renewedTo = 0;
      const value = await tx.run({ key }, async (client) => {
        await client.query(`INSERT INTO ${payments} (key, amount) VALUES ($1, 1)`, [key]);
        await sleep(700);
        const { rows } = await pool.query(`SELECT lease_until FROM ${table} WHERE id = $1`, [
          recordId('', key),
        ]);
        renewedTo = Number(rows[0].lease_until);
        await sleep(300);
        return 'long';
      });
      assert.equal(value, 'long');
      assert.ok(
        renewedTo > started + 300 + 300,
        `the lease was renewed while the work ran (${renewedTo - started} ms)`,
      );
      assert.equal(await paymentsFor(key), 1);
      assert.ok(!events.some((e) => e.type === 'lease_lost' || e.type === 'store_error'));
    } finally {
      await small.end();
    }
  });

  it('frees keys without a second connection per request: a full pool of failing requests does not deadlock', async () => {
    // Every connection of a pool of 2 is inside a transaction whose key must be freed (a 400 the
    // policy does not keep, a throwing work). Freeing needs a connection: the transaction's own one
    // must be given back first, or each request waits for the other forever.
    const small = await testPool({ max: 2, connectionTimeoutMillis: 10_000 });
    try {
      const namespace = uniqueName('ns');
      const store = postgresStore({ pool: small, table, namespace, sweepIntervalMs: 0 });
      const oncely = createOncely({ store });
      const tx = transactional({ oncely, store, pool: small });
      const refused = (key: string) =>
        tx.execute({ key, fingerprint: 'fp' }, async (client) => {
          await insertPayment(client, key);
          await sleep(50); // both requests hold their connection at once
          return json(400, { error: 'invalid' });
        });
      const failing = (key: string) =>
        tx.run({ key }, async (client) => {
          await insertPayment(client, key);
          await sleep(50);
          throw new Error('work failed');
        });
      const keys = [uniqueName('k'), uniqueName('k'), uniqueName('k'), uniqueName('k')];
      const outcomes = await Promise.race([
        Promise.allSettled([refused(keys[0]!), refused(keys[1]!), failing(keys[2]!), failing(keys[3]!)]),
        sleep(8000).then(() => 'deadlocked' as const),
      ]);
      assert.notEqual(outcomes, 'deadlocked');
      assert.ok(Array.isArray(outcomes));
      assert.deepEqual(
        outcomes.map((o) => o.status),
        ['fulfilled', 'fulfilled', 'rejected', 'rejected'],
      );
      for (const key of keys) {
        assert.equal(await countRows(small, payments, 'key = $1', [key]), 0, 'rolled back');
        const again = await oncely.begin({ key, fingerprint: 'fp' });
        assert.equal(again.kind, 'execute', 'the key was freed');
        if (again.kind === 'execute') await again.abort();
      }
    } finally {
      await small.end();
    }
  });

  it('aborts the decision and frees the key when no connection can be had', async () => {
    const { store, oncely } = setup();
    const failing = {
      query: pool.query.bind(pool),
      connect: async (): Promise<pg.PoolClient> => {
        throw new Error('pool exhausted');
      },
    };
    const tx = transactional({ oncely, store, pool: failing });
    const key = uniqueName('key');
    await assert.rejects(
      tx.run({ key }, () => 'x'),
      /pool exhausted/,
    );
    assert.equal(await store.get({ id: recordId('', key), now: Date.now() }), null);
  });

  describe('options', () => {
    it('has its defaults in TRANSACTIONAL_DEFAULTS', () => {
      assert.equal(TRANSACTIONAL_DEFAULTS.commitWindowMs, 10_000);
      assert.ok(Object.isFrozen(TRANSACTIONAL_DEFAULTS));
    });

    it('rejects unknown and invalid options with ERR_ONCELY_INVALID_OPTION', () => {
      const { store, oncely } = setup();
      const otherStore = postgresStore({ pool, table, sweepIntervalMs: 0 });
      const fakeStore = { ...store } as PostgresStore;
      const invalid = isCode('ERR_ONCELY_INVALID_OPTION');
      const bad: unknown[] = [
        undefined,
        null,
        {},
        { oncely, store, tabel: 'typo' },
        { oncely, store: otherStore },
        { oncely, store: fakeStore },
        { oncely: {}, store },
        { store },
        { oncely, store, pool: { query: pool.query.bind(pool) } },
        { oncely, store, commitWindowMs: -1 },
        { oncely, store, commitWindowMs: 1.5 },
        { oncely, store, commitWindowMs: '1000' },
        { oncely, store, commitWindowMs: 2 ** 31 },
      ];
      for (const options of bad)
        assert.throws(() => transactional(options as never), invalid, String(options));
      const clientOnly = postgresStore({ pool: { query: pool.query.bind(pool) }, table, sweepIntervalMs: 0 });
      assert.throws(
        () => transactional({ oncely: createOncely({ store: clientOnly }), store: clientOnly }),
        /connect\(\)/,
      );
    });

    it('rejects calls once the store is closed', async () => {
      const { tx, store } = setup();
      await store.close();
      await assert.rejects(
        tx.run({ key: uniqueName('key') }, () => assert.fail('never runs')),
        isCode('ERR_ONCELY_STORE_UNAVAILABLE'),
      );
    });

    it('throws the OncelyError of a rejection, ready for problemResponse', async () => {
      const { tx } = setup();
      await assert.rejects(
        tx.execute({ key: '', fingerprint: 'fp' }, () => json(200, {})),
        (error) => error instanceof OncelyError && error.status === 400,
      );
    });
  });
});
