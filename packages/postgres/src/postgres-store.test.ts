import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeStoreContract } from '@oncely/conformance';
import { type AcquireInput, OncelyError, type Store, type StoredResponse } from '@oncely/core';
import type pg from 'pg';
import { POSTGRES_DEFAULTS, type PostgresStore, postgresSchema, postgresStore } from './index.ts';
import { countRows, dropTables, testPool, uniqueName } from './test-database.ts';

{
  // The contract suite on one table shared by every store it creates (one namespace each). A pool
  // of 25 lets half of its 50 concurrent acquires reach the server at the same time. Set up on the
  // first create(), not at load: a run that filters the suite out must not leave a table behind.
  let ready: Promise<{ pool: pg.Pool; table: string }> | undefined;
  const setup = () =>
    (ready ??= (async () => {
      const pool = await testPool({ max: 25 });
      const table = uniqueName('oncely_contract');
      await postgresStore({ pool, table }).migrate();
      return { pool, table };
    })());
  describeStoreContract({
    name: 'postgres',
    create: async ({ namespace }) => {
      const { pool, table } = await setup();
      return postgresStore({ pool, table, namespace, sweepIntervalMs: 0 });
    },
    inspectable: true,
    cleanup: async () => {
      if (ready === undefined) return;
      const { pool, table } = await ready;
      await dropTables(pool, table);
      await pool.end();
    },
  });
}

const LEASE = 30_000;
const TTL = 86_400_000;
let tokens = 0;

const input = (id: string, now: number, extra: Partial<AcquireInput> = {}): AcquireInput => ({
  id,
  fingerprint: 'fp',
  token: `token-${++tokens}`,
  now,
  leaseUntil: now + LEASE,
  expiresAt: now + TTL,
  ...extra,
});

/** Acquire and complete `id` with engine times, so the record expires at `expiresAt`. */
async function completed(
  store: Store,
  id: string,
  now: number,
  expiresAt: number,
  response: StoredResponse | null = null,
) {
  const result = await store.acquire(input(id, now));
  assert.equal(result.acquired, true);
  assert.equal(await store.complete({ id, token: result.record.token, response, now, expiresAt }), true);
}

function isInvalidOption(error: unknown): boolean {
  assert.ok(error instanceof OncelyError, `expected an OncelyError, got ${String(error)}`);
  assert.equal(error.code, 'ERR_ONCELY_INVALID_OPTION');
  return true;
}

describe('postgresStore', () => {
  let pool: pg.Pool;
  const tables: string[] = [];
  /** A migrated table of its own, dropped after the suite. */
  const newTable = async (): Promise<string> => {
    const table = uniqueName('oncely_store');
    tables.push(table);
    await postgresStore({ pool, table }).migrate();
    return table;
  };
  before(async () => {
    pool = await testPool({ max: 10 });
  });
  after(async () => {
    await dropTables(pool, ...tables);
    await pool.end();
  });

  describe('migrate', () => {
    it('creates the table and its index, and is idempotent', async () => {
      const table = uniqueName('oncely_migrate');
      tables.push(table);
      const store = postgresStore({ pool, table, sweepIntervalMs: 0 });
      await store.migrate();
      await store.migrate();
      const indexes = await pool.query('SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY 1', [
        table,
      ]);
      assert.deepEqual(
        indexes.rows.map((r) => r.indexname),
        [`${table}_expires_at`, `${table}_pkey`],
      );
      assert.equal((await store.acquire(input('a', Date.now()))).acquired, true);
      await store.migrate();
      assert.equal(await countRows(pool, table), 1, 'migrating again keeps the rows');
    });

    it('survives many concurrent migrations of one new table from separate connections', async () => {
      // Without the advisory lock, 8 concurrent CREATE TABLE IF NOT EXISTS fail about half the time
      // with a duplicate key in pg_type; here every round must succeed.
      for (let round = 0; round < 5; round++) {
        const table = uniqueName('oncely_race');
        tables.push(table);
        const clients = await Promise.all(Array.from({ length: 8 }, () => pool.connect()));
        try {
          // Each store runs on its own connection: 8 sessions racing, not one queueing.
          await Promise.all(clients.map((client) => postgresStore({ pool: client, table }).migrate()));
        } finally {
          for (const client of clients) client.release();
        }
        assert.equal(await countRows(pool, 'pg_tables', 'tablename = $1', [table]), 1);
      }
    });

    it('does not wait for writes in flight once the index exists', async () => {
      const table = await newTable();
      const writer = await pool.connect();
      try {
        await writer.query('BEGIN');
        await writer.query(`INSERT INTO ${table} (namespace, id, state, fingerprint, token, lease_until, expires_at)
                            VALUES ('w', 'w', 'in_progress', 'f', 't', 0, 0)`);
        // CREATE INDEX IF NOT EXISTS would queue behind this open write (and every acquire behind it).
        const migrated = postgresStore({ pool, table }).migrate();
        const outcome = await Promise.race([migrated.then(() => 'done'), sleep(3000).then(() => 'blocked')]);
        assert.equal(outcome, 'done');
      } finally {
        await writer.query('ROLLBACK');
        writer.release();
      }
    });

    it('creates a schema-qualified table in an existing schema', async () => {
      const schema = uniqueName('oncely_schema');
      await pool.query(`CREATE SCHEMA ${schema}`);
      try {
        const store = postgresStore({ pool, table: `${schema}.records`, sweepIntervalMs: 0 });
        await store.migrate();
        await store.migrate();
        const now = Date.now();
        await completed(store, 'q', now, now + TTL);
        assert.equal(await countRows(pool, `${schema}.records`), 1);
        assert.equal(
          await countRows(pool, 'pg_indexes', 'schemaname = $1 AND indexname = $2', [
            schema,
            'records_expires_at',
          ]),
          1,
        );
      } finally {
        await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      }
    });

    it('says to run migrate() when the table is missing', async () => {
      const store = postgresStore({ pool, table: uniqueName('oncely_missing'), sweepIntervalMs: 0 });
      await assert.rejects(store.acquire(input('a', Date.now())), (error: Error) => {
        assert.match(error.message, /does not exist\. Run `await store\.migrate\(\)`/);
        assert.equal((error.cause as { code?: string }).code, '42P01');
        return true;
      });
    });

    it('exports the same DDL it applies, as docs/postgres.md shows it', async () => {
      const table = uniqueName('oncely_ddl');
      tables.push(table);
      await pool.query(postgresSchema({ table }));
      await pool.query(postgresSchema({ table }));
      const store = postgresStore({ pool, table, sweepIntervalMs: 0 });
      await store.migrate();
      assert.equal((await store.acquire(input('a', Date.now()))).acquired, true);
      assert.match(postgresSchema(), /CREATE TABLE IF NOT EXISTS "oncely_records" \(/);
      const docs = await readFile(new URL('../../../docs/postgres.md', import.meta.url), 'utf8');
      assert.ok(docs.includes(postgresSchema()), 'docs/postgres.md shows the DDL exactly as applied');
      assert.throws(() => postgresSchema({ table: 'Bad Name' }), isInvalidOption);
    });
  });

  describe('records', () => {
    let table: string;
    before(async () => {
      table = await newTable();
    });

    it('keeps records across store instances: bodies, headers and null responses', async () => {
      const now = Date.now();
      const response: StoredResponse = {
        status: 201,
        headers: [
          ['x-nul', 'a\u0000b'],
          ['x-lone', '\ud800'],
          ['set-x', 'a'],
          ['set-x', 'b'],
        ],
        body: Uint8Array.from({ length: 256 }, (_, i) => i),
      };
      const first = postgresStore({ pool, table, sweepIntervalMs: 0 });
      await completed(first, 'done', now, now + TTL, response);
      await completed(first, 'no-response', now, now + TTL, null);
      await first.close();
      const second = postgresStore({ pool, table, sweepIntervalMs: 0 });
      const done = await second.get({ id: 'done', now });
      assert.deepEqual(done?.response, response, 'headers json keeps NUL and lone surrogates verbatim');
      assert.equal(done?.response?.body.constructor, Uint8Array, 'a plain Uint8Array, not a Buffer');
      assert.equal((await second.get({ id: 'no-response', now }))?.response, null);
      assert.equal((await second.acquire(input('done', now + 1))).acquired, false);
      await second.close();
    });

    it('counts owners in attempt, and reports takeover only for a lapsed lease of a live record', async () => {
      const store = postgresStore({ pool, table, namespace: uniqueName('ns'), sweepIntervalMs: 0 });
      const attempt = async (id: string) =>
        (await pool.query(`SELECT attempt FROM ${table} WHERE id = $1`, [id])).rows[0].attempt as number;
      const now = 1_000_000;
      const first = await store.acquire(input('k', now, { leaseUntil: now + 10, expiresAt: now + 100 }));
      assert.deepEqual([first.acquired, first.acquired && first.takeover], [true, false]);
      const second = await store.acquire(
        input('k', now + 10, { leaseUntil: now + 20, expiresAt: now + 100 }),
      );
      assert.deepEqual([second.acquired, second.acquired && second.takeover], [true, true]);
      assert.equal(await attempt('k'), 2);
      const third = await store.acquire(input('k', now + 20, { leaseUntil: now + 30, expiresAt: now + 100 }));
      assert.equal(third.acquired && third.takeover, true);
      assert.equal(await attempt('k'), 3);
      const refused = await store.acquire(
        input('k', now + 29, { leaseUntil: now + 40, expiresAt: now + 100 }),
      );
      assert.equal(refused.acquired, false);
      assert.equal(await attempt('k'), 3, 'a refused acquire changes nothing');
      // Lease lapsed and retention ended: the record is gone, so this is a fresh record, no takeover.
      const fresh = await store.acquire(input('k', now + 100, { fingerprint: 'other' }));
      assert.deepEqual([fresh.acquired, fresh.acquired && fresh.takeover], [true, false]);
      assert.equal(await attempt('k'), 1);
    });

    it('takes every time from the engine, none from the server clock', async () => {
      // Times far from the server's now(): 1970 and the year 2500. The store must not care.
      const store = postgresStore({ pool, table, namespace: uniqueName('ns'), sweepIntervalMs: 0 });
      const past = 5_000;
      await completed(store, 'past', past, past + 10, null);
      assert.equal((await store.get({ id: 'past', now: past + 9 }))?.state, 'completed');
      assert.equal(await store.get({ id: 'past', now: past + 10 }), null);
      const future = 16_725_225_600_000;
      const owned = await store.acquire(input('future', future));
      assert.equal(owned.acquired, true);
      assert.equal((await store.acquire(input('future', future + LEASE - 1))).acquired, false);
      assert.equal((await store.acquire(input('future', future + LEASE))).acquired, true);
    });

    it('works when the role defaults to REPEATABLE READ or SERIALIZABLE', async () => {
      for (const level of ['repeatable\\ read', 'serializable']) {
        const strict = await testPool({ max: 10, options: `-c default_transaction_isolation=${level}` });
        try {
          const shown = await strict.query('SHOW default_transaction_isolation');
          assert.equal(shown.rows[0].default_transaction_isolation, level.replace('\\', ''));
          const store = postgresStore({
            pool: strict,
            table,
            namespace: uniqueName('ns'),
            sweepIntervalMs: 0,
          });
          const now = Date.now();
          const results = await Promise.all(
            Array.from({ length: 50 }, () => store.acquire(input('hot', now))),
          );
          const winners = results.filter((r) => r.acquired);
          assert.equal(winners.length, 1, `${level}: one winner`);
          for (const r of results) assert.equal(r.record.token, winners[0]!.record.token);
          // Renewals and duplicates racing on one row: each statement either acts or is retried.
          const { token } = winners[0]!.record;
          const steps = await Promise.all([
            ...Array.from({ length: 10 }, (_, i) =>
              store.extend({ id: 'hot', token, now, leaseUntil: now + LEASE + i }),
            ),
            ...Array.from({ length: 10 }, () => store.acquire(input('hot', now)).then((r) => !r.acquired)),
          ]);
          assert.ok(steps.every(Boolean));
        } finally {
          await strict.end();
        }
      }
    });

    it('reads the same records through a pool with custom type parsers', async () => {
      const custom = await testPool({
        max: 2,
        types: {
          getTypeParser: ((oid: number) =>
            oid === 20 ? (v: string) => BigInt(v) : (v: string) => v) as never,
        },
      });
      try {
        const store = postgresStore({ pool: custom, table, namespace: uniqueName('ns'), sweepIntervalMs: 0 });
        const now = Date.now();
        const body = Uint8Array.from([0, 1, 2, 255]);
        await completed(store, 'typed', now, now + TTL, { status: 200, headers: [['a', 'b']], body });
        const record = await store.get({ id: 'typed', now });
        assert.equal(record?.expiresAt, now + TTL);
        assert.deepEqual(record?.response, { status: 200, headers: [['a', 'b']], body });
      } finally {
        await custom.end();
      }
    });

    it('rejects when a statement fails, and works again after', async () => {
      // Fault injection: a trigger that fails the insert of one id.
      const store = postgresStore({ pool, table, namespace: uniqueName('ns'), sweepIntervalMs: 0 });
      await pool.query(`CREATE FUNCTION ${table}_boom() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.id = 'boom' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$`);
      await pool.query(
        `CREATE TRIGGER boom BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_boom()`,
      );
      try {
        const now = Date.now();
        await assert.rejects(store.acquire(input('boom', now)), /injected failure/);
        assert.equal((await store.acquire(input('fine', now))).acquired, true);
        assert.equal(await store.get({ id: 'boom', now }), null);
      } finally {
        await pool.query(`DROP TRIGGER boom ON ${table}`);
        await pool.query(`DROP FUNCTION ${table}_boom()`);
      }
    });

    it('rejects every call after close(), closes twice, and leaves the pool open', async () => {
      const store = postgresStore({ pool, table, sweepIntervalMs: 0 });
      const now = Date.now();
      await store.acquire(input('closing', now));
      await store.close();
      await store.close();
      const closed = /postgresStore is closed/;
      await assert.rejects(store.acquire(input('b', now)), closed);
      await assert.rejects(store.get({ id: 'a', now }), closed);
      await assert.rejects(
        store.complete({ id: 'a', token: 't', response: null, now, expiresAt: now }),
        closed,
      );
      await assert.rejects(store.extend({ id: 'a', token: 't', now, leaseUntil: now }), closed);
      await assert.rejects(store.release({ id: 'a', token: 't' }), closed);
      await assert.rejects(store.sweep(), closed);
      await assert.rejects(store.migrate(), closed);
      assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'the pool is still usable');
    });

    it('keeps two tables in one database apart', async () => {
      const other = await newTable();
      const a = postgresStore({ pool, table, namespace: 'apart', sweepIntervalMs: 0 });
      const b = postgresStore({ pool, table: other, namespace: 'apart', sweepIntervalMs: 0 });
      const now = Date.now();
      assert.equal((await a.acquire(input('same', now))).acquired, true);
      assert.equal((await b.acquire(input('same', now))).acquired, true);
    });
  });

  describe('sweeper', () => {
    const NOW = 1_000_000;
    const clock = (): number => NOW;
    let table: string;
    before(async () => {
      table = await newTable();
    });

    /** `expired` rows (expires_at < NOW, some exactly NOW) and `live` rows of `namespace`, in one statement. */
    const seed = async (namespace: string, expired: number, live: number): Promise<void> => {
      await pool.query(
        `INSERT INTO ${table} (namespace, id, state, fingerprint, token, lease_until, expires_at)
         SELECT $1, 'old-' || i, 'completed', 'f', 't', 0, $2 - (i % 1000) FROM generate_series(1, $3::int) AS i
         UNION ALL
         SELECT $1, 'live-' || i, 'completed', 'f', 't', 0, $2 + 1 + i FROM generate_series(1, $4::int) AS i`,
        [namespace, NOW, expired, live],
      );
    };
    const rows = (namespace: string, where = 'true'): Promise<number> =>
      countRows(pool, table, `namespace = $1 AND ${where}`, [namespace]);
    const store = (
      namespace: string,
      extra: Partial<Parameters<typeof postgresStore>[0]> = {},
    ): PostgresStore => postgresStore({ pool, table, namespace, sweepIntervalMs: 0, clock, ...extra });

    it('deletes only expired rows of its own namespace, in batches, and returns the count', async () => {
      const mine = uniqueName('mine');
      const theirs = uniqueName('theirs');
      await seed(mine, 1234, 20);
      await seed(theirs, 10, 0);
      const sweeper = store(mine, { sweepBatchSize: 100 });
      assert.equal(await sweeper.sweep(), 1234);
      assert.equal(await rows(mine), 20);
      assert.equal(await rows(mine, `expires_at <= ${NOW}`), 0);
      assert.equal(await rows(theirs), 10, 'another namespace is left alone: it may run on another clock');
      assert.equal(await sweeper.sweep(), 0, 'nothing left to delete');
    });

    it('lets several concurrent sweepers delete each expired row exactly once', async () => {
      const namespace = uniqueName('shared');
      await seed(namespace, 4000, 50);
      const clients = await Promise.all(Array.from({ length: 4 }, () => pool.connect()));
      try {
        // Four stores on four sessions, as four processes would be.
        const counts = await Promise.all(
          clients.map((client) =>
            postgresStore({
              pool: client,
              table,
              namespace,
              sweepIntervalMs: 0,
              sweepBatchSize: 50,
              clock,
            }).sweep(),
          ),
        );
        assert.equal(
          counts.reduce((a, b) => a + b, 0),
          4000,
          `each row deleted once: ${counts.join(' + ')}`,
        );
        assert.ok(
          counts.filter((n) => n > 0).length >= 2,
          `the sweepers shared the work: ${counts.join(', ')}`,
        );
      } finally {
        for (const client of clients) client.release();
      }
      assert.equal(await rows(namespace), 50, 'live rows are left');
    });

    it('skips rows an open transaction holds instead of waiting for it', async () => {
      const namespace = uniqueName('held');
      await seed(namespace, 30, 0);
      const holder = await pool.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(
          `SELECT 1 FROM ${table} WHERE namespace = $1 AND id IN ('old-1', 'old-2') FOR UPDATE`,
          [namespace],
        );
        const started = performance.now();
        assert.equal(await store(namespace, { sweepBatchSize: 7 }).sweep(), 28);
        assert.ok(performance.now() - started < 2000, 'it did not wait for the lock');
      } finally {
        await holder.query('ROLLBACK');
        holder.release();
      }
      assert.equal(await store(namespace).sweep(), 2, 'the held rows go on the next sweep');
    });

    it('never deletes a record an acquire revives while it sweeps', async () => {
      const namespace = uniqueName('revive');
      await seed(namespace, 2000, 0);
      const sweeper = store(namespace, { sweepBatchSize: 100 });
      const acquirer = store(namespace);
      const [, revived] = await Promise.all([
        sweeper.sweep(),
        Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            acquirer.acquire(input(`old-${i * 10 + 1}`, NOW, { fingerprint: 'new' })),
          ),
        ),
      ]);
      for (const result of revived) assert.equal(result.acquired && !result.takeover, true);
      assert.equal(await rows(namespace), 200, 'the revived records, and nothing else, are left');
      assert.equal(await rows(namespace, `expires_at > ${NOW}`), 200);
    });

    it('runs on its timer, which never keeps the process alive', async () => {
      const namespace = uniqueName('timer');
      await seed(namespace, 25, 1);
      const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      const before = timers();
      const sweeper = store(namespace, { sweepIntervalMs: 10 });
      assert.equal(await sweeper.get({ id: 'live-1', now: NOW }).then((r) => r?.state), 'completed');
      assert.equal(timers(), before, 'the sweeper timer is unref()ed');
      const deadline = Date.now() + 5000;
      while ((await rows(namespace)) > 1 && Date.now() < deadline) await sleep(10);
      assert.equal(await rows(namespace), 1, 'the timer swept the expired rows');
      await sweeper.close();
    });
  });

  describe('options', () => {
    const fakePool = { query: async () => ({ rows: [], rowCount: 0 }) };

    it('has its defaults in POSTGRES_DEFAULTS', () => {
      assert.equal(POSTGRES_DEFAULTS.table, 'oncely_records');
      assert.equal(POSTGRES_DEFAULTS.namespace, 'oncely');
      assert.equal(POSTGRES_DEFAULTS.sweepIntervalMs, 60_000);
      assert.equal(POSTGRES_DEFAULTS.sweepBatchSize, 500);
      assert.equal(typeof POSTGRES_DEFAULTS.clock(), 'number');
      assert.ok(Object.isFrozen(POSTGRES_DEFAULTS));
    });

    it('rejects unknown and invalid options with ERR_ONCELY_INVALID_OPTION', () => {
      const bad: unknown[] = [
        undefined,
        null,
        'postgres://localhost',
        {},
        { pool: null },
        { pool: {} },
        { pool: { query: 'SELECT 1' } },
        { pool: fakePool, tabel: 'typo' },
        { pool: fakePool, connectionString: 'postgres://x' },
        { pool: fakePool, namespace: '' },
        { pool: fakePool, namespace: 7 },
        { pool: fakePool, sweepIntervalMs: -1 },
        { pool: fakePool, sweepIntervalMs: 1.5 },
        { pool: fakePool, sweepIntervalMs: Number.NaN },
        { pool: fakePool, sweepIntervalMs: '60000' },
        { pool: fakePool, sweepIntervalMs: 2 ** 31 },
        { pool: fakePool, sweepBatchSize: 0 },
        { pool: fakePool, sweepBatchSize: 1_000_000 },
        { pool: fakePool, clock: 5 },
        { pool: fakePool, table: '' },
        { pool: fakePool, table: 7 },
        { pool: fakePool, table: '1records' },
        { pool: fakePool, table: 'x'.repeat(53) },
        { pool: fakePool, table: 'Records' },
      ];
      for (const options of bad) {
        assert.throws(() => postgresStore(options as never), isInvalidOption, JSON.stringify(options));
      }
    });

    it('rejects a table name with SQL in it, or a reserved schema', () => {
      for (const table of [
        'records; DROP TABLE users',
        'records"--',
        'x" (a); DROP TABLE y; --',
        'records WHERE 1',
        '"records"',
        'a.b.c',
        '.records',
        'records.',
        'pg_catalog.records',
        'public.$records',
        "o'neil",
      ]) {
        assert.throws(() => postgresStore({ pool: fakePool, table }), isInvalidOption, table);
      }
    });

    it('accepts valid options, undefined meaning the default, and does no I/O when built', async () => {
      let queries = 0;
      const counting = {
        query: async () => {
          queries++;
          return { rows: [], rowCount: 0 };
        },
      };
      const store = postgresStore({
        pool: counting,
        namespace: undefined,
        table: 'billing.records_2',
        sweepIntervalMs: 0,
        sweepBatchSize: 1,
        clock: () => 0,
      });
      assert.equal(store.name, 'postgres');
      assert.equal(queries, 0);
      await store.close();
      assert.equal('x'.repeat(52).length, 52);
      postgresStore({ pool: counting, table: 'x'.repeat(52) });
    });
  });
});
