import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { describeStoreContract } from '@oncely/conformance';
import { type AcquireInput, OncelyError, type Store, type StoredResponse } from '@oncely/core';
import { SQLITE_DEFAULTS, sqliteStore } from './index.ts';

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'oncely-sqlite-'));

{
  const dir = tempDir();
  const file = join(dir, 'contract.db');
  describeStoreContract({
    name: 'sqlite',
    create: ({ namespace }) => sqliteStore({ database: file, namespace, sweepIntervalMs: 0 }),
    inspectable: true,
    cleanup: () => rm(dir, { recursive: true, force: true }),
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
  response: StoredResponse | null,
) {
  const result = await store.acquire(input(id, now));
  assert.equal(result.acquired, true);
  assert.equal(await store.complete({ id, token: result.record.token, response, now, expiresAt }), true);
}

/** A second, independent connection: what another process would see in the file. */
function inspect(file: string, sql: string, ...params: Array<string | number>): unknown {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare(sql).get(...params);
  } finally {
    db.close();
  }
}

function isInvalidOption(error: unknown): boolean {
  assert.ok(error instanceof OncelyError, `expected an OncelyError, got ${String(error)}`);
  assert.equal(error.code, 'ERR_ONCELY_INVALID_OPTION');
  return true;
}

describe('sqliteStore', () => {
  const dir = tempDir();
  let files = 0;
  const newFile = (): string => join(dir, `store-${++files}.db`);
  after(() => rm(dir, { recursive: true, force: true }));

  it('keeps records across a restart: a new store on the same file sees them, bodies and null responses', async () => {
    const file = newFile();
    const now = Date.now();
    const body = Uint8Array.from({ length: 256 }, (_, i) => i);
    const response: StoredResponse = {
      status: 201,
      headers: [
        ['set-x', 'a'],
        ['set-x', 'b'],
      ],
      body,
    };
    const first = sqliteStore({ database: file, sweepIntervalMs: 0 });
    await completed(first, 'done', now, now + TTL, response);
    await completed(first, 'no-response', now, now + TTL, null);
    const running = await first.acquire(input('running', now));
    await first.close();

    const second = sqliteStore({ database: file, sweepIntervalMs: 0 });
    const done = await second.get({ id: 'done', now });
    assert.equal(done?.state, 'completed');
    assert.deepEqual(done?.response, response);
    assert.equal(done?.response?.body.constructor, Uint8Array, 'a plain Uint8Array, not a Buffer');
    const none = await second.get({ id: 'no-response', now });
    assert.equal(none?.state, 'completed');
    assert.equal(none?.response, null);
    assert.deepEqual(await second.get({ id: 'running', now }), running.record);
    const again = await second.acquire(input('done', now + 1));
    assert.equal(again.acquired, false, 'a restart does not run completed work again');
    await second.close();
  });

  it('puts the file in WAL mode, busy_timeout 0 (it waits for locks itself) and synchronous=NORMAL', async () => {
    const file = newFile();
    const db = new DatabaseSync(file);
    const store = sqliteStore({ database: db, busyTimeoutMs: 1234, sweepIntervalMs: 0 });
    await store.get({ id: 'x', now: Date.now() });
    // busyTimeoutMs is the store's own asynchronous wait (sqlite-lock.test.ts), never SQLite's.
    assert.deepEqual({ ...db.prepare('PRAGMA busy_timeout').get() }, { timeout: 0 });
    assert.deepEqual({ ...db.prepare('PRAGMA synchronous').get() }, { synchronous: 1 });
    assert.deepEqual({ ...(inspect(file, 'PRAGMA journal_mode') as object) }, { journal_mode: 'wal' });
    await store.close();
    db.close();
  });

  it('creates its table on first use, not at construction, under the configured name', async () => {
    const file = newFile();
    const store = sqliteStore({ database: file, table: 'idem_keys', sweepIntervalMs: 0 });
    assert.equal(existsSync(file), false, 'building a store does no I/O');
    await store.acquire(input('a', Date.now()));
    const table = inspect(file, "SELECT name FROM sqlite_master WHERE type = 'table'") as { name: string };
    assert.equal(table.name, 'idem_keys');
    assert.deepEqual({ ...(inspect(file, 'SELECT count(*) AS n FROM idem_keys') as object) }, { n: 1 });
    await store.close();
  });

  it('reports a file it cannot open as a rejected call, not a throw at construction', async () => {
    const store = sqliteStore({ database: join(dir, 'missing-dir', 'x.db'), sweepIntervalMs: 0 });
    await assert.rejects(store.acquire(input('a', Date.now())), /unable to open/);
    await store.close();
  });

  it('rejects with the SQLite error when the write lock stays taken, and works once it is free', async () => {
    const file = newFile();
    const store = sqliteStore({ database: file, busyTimeoutMs: 50, sweepIntervalMs: 0 });
    const now = Date.now();
    await store.get({ id: 'warm', now });
    const other = new DatabaseSync(file);
    other.exec('BEGIN IMMEDIATE');
    const started = performance.now();
    await assert.rejects(store.acquire(input('a', now)), /database is locked/);
    assert.ok(performance.now() - started >= 45, 'it waited for the busy timeout first');
    await assert.rejects(
      store.complete({ id: 'a', token: 't', response: null, now, expiresAt: now + TTL }),
      /locked/,
    );
    other.exec('ROLLBACK');
    other.close();
    const result = await store.acquire(input('a', now));
    assert.equal(result.acquired, true, 'no transaction was left open by the failure');
    await store.close();
  });

  it('rolls back when a statement fails inside the acquire transaction', async () => {
    const db = new DatabaseSync(newFile());
    const store = sqliteStore({ database: db, sweepIntervalMs: 0 });
    const now = Date.now();
    await store.get({ id: 'warm', now });
    // Fault injection inside the transaction, after BEGIN IMMEDIATE succeeded.
    db.exec(`CREATE TRIGGER boom BEFORE INSERT ON oncely_records WHEN NEW.id = 'boom'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
    await assert.rejects(store.acquire(input('boom', now)), /injected failure/);
    assert.equal(db.isTransaction, false, 'the transaction was rolled back');
    assert.equal((await store.acquire(input('fine', now))).acquired, true);
    assert.equal(await store.get({ id: 'boom', now }), null);
    await store.close();
    db.close();
  });

  it('leaves a database it was given open on close(), and is safe to close twice', async () => {
    const db = new DatabaseSync(newFile());
    const store = sqliteStore({ database: db, sweepIntervalMs: 0 });
    await store.acquire(input('a', Date.now()));
    await store.close();
    await store.close();
    assert.equal(db.isOpen, true);
    assert.deepEqual({ ...db.prepare('SELECT count(*) AS n FROM oncely_records').get() }, { n: 1 });
    db.close();
  });

  it('rejects every call after close() with a clear error', async () => {
    const store = sqliteStore({ database: newFile(), sweepIntervalMs: 0 });
    const now = Date.now();
    await store.acquire(input('a', now));
    await store.close();
    const closed = /sqliteStore is closed/;
    await assert.rejects(store.acquire(input('b', now)), closed);
    await assert.rejects(store.get({ id: 'a', now }), closed);
    await assert.rejects(
      store.complete({ id: 'a', token: 't', response: null, now, expiresAt: now }),
      closed,
    );
    await assert.rejects(store.extend({ id: 'a', token: 't', now, leaseUntil: now }), closed);
    await assert.rejects(store.release({ id: 'a', token: 't' }), closed);
    await assert.rejects(store.sweep(), closed);
  });

  it('keeps two tables in one file apart', async () => {
    const file = newFile();
    const a = sqliteStore({ database: file, table: 'a_records', sweepIntervalMs: 0 });
    const b = sqliteStore({ database: file, table: 'b_records', sweepIntervalMs: 0 });
    const now = Date.now();
    assert.equal((await a.acquire(input('same', now))).acquired, true);
    assert.equal((await b.acquire(input('same', now))).acquired, true);
    await a.close();
    await b.close();
  });

  it('works on an in-memory database', async () => {
    const store = sqliteStore({ database: ':memory:', sweepIntervalMs: 0 });
    const now = Date.now();
    await completed(store, 'a', now, now + TTL, { status: 204, headers: [], body: new Uint8Array() });
    assert.deepEqual((await store.get({ id: 'a', now }))?.response, {
      status: 204,
      headers: [],
      body: new Uint8Array(),
    });
    await store.close();
  });

  describe('sweeper', () => {
    const NOW = 1_000_000;
    const clock = (): number => NOW;

    /** `count` rows in `namespace` expired before NOW, and `live` rows that are not. */
    async function seed(store: Store, count: number, live: number, prefix = 'row') {
      for (let i = 0; i < count; i++) await completed(store, `${prefix}-old-${i}`, 0, 1 + i, null);
      for (let i = 0; i < live; i++) await completed(store, `${prefix}-live-${i}`, 0, NOW + 1, null);
    }
    const rows = (file: string, namespace: string, where = '1'): number =>
      (
        inspect(
          file,
          `SELECT count(*) AS n FROM oncely_records WHERE namespace = ? AND ${where}`,
          namespace,
        ) as {
          n: number;
        }
      ).n;

    it('deletes only expired rows of its own namespace and returns the count', async () => {
      const file = newFile();
      const store = sqliteStore({
        database: file,
        namespace: 'mine',
        sweepIntervalMs: 0,
        sweepBatchSize: 7,
        clock,
      });
      const neighbour = sqliteStore({ database: file, namespace: 'theirs', sweepIntervalMs: 0, clock });
      await seed(store, 30, 5);
      await seed(neighbour, 4, 0);
      // A row expiring exactly now is expired: expiresAt is the first instant it is gone.
      await completed(store, 'edge', 0, NOW, null);
      assert.equal(await store.sweep(), 31);
      assert.equal(rows(file, 'mine'), 5);
      assert.equal(rows(file, 'mine', `expires_at <= ${NOW}`), 0);
      assert.equal(rows(file, 'theirs'), 4, 'another namespace is left alone');
      assert.equal(await store.sweep(), 0, 'nothing left to delete');
      await store.close();
      await neighbour.close();
    });

    it('deletes in batches and lets acquires in between, without losing them', async () => {
      const file = newFile();
      const store = sqliteStore({ database: file, sweepIntervalMs: 0, sweepBatchSize: 500, clock });
      await seed(store, 1200, 10);
      const sweeping = store.sweep();
      // The first batch ran before sweep() returned; the rest wait for the event loop.
      assert.equal(rows(file, 'oncely', `expires_at <= ${NOW}`), 700, 'one batch of 500 deleted so far');

      // Acquires made while the sweep is in progress: a new id, and an expired id being replaced.
      const replaced = 'row-old-1199';
      const stillThere = rows(file, 'oncely', `id = '${replaced}'`);
      const newcomer = await store.acquire(input('newcomer', NOW));
      const reused = await store.acquire(input(replaced, NOW));
      assert.equal(newcomer.acquired, true);
      assert.equal(reused.acquired && !reused.takeover, true);

      assert.equal(await sweeping, 1200 - stillThere, 'every expired row deleted, the replaced one excepted');
      assert.deepEqual(await store.get({ id: 'newcomer', now: NOW }), newcomer.record);
      assert.deepEqual(await store.get({ id: replaced, now: NOW }), reused.record);
      assert.equal(rows(file, 'oncely'), 12);
      await store.close();
    });

    it('runs on its timer, which never keeps the process alive', async () => {
      const file = newFile();
      const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      const before = timers();
      const store = sqliteStore({ database: file, sweepIntervalMs: 10, clock });
      await seed(store, 20, 1);
      assert.equal(timers(), before, 'the sweeper timer is unref()ed');
      const deadline = Date.now() + 5000;
      while (rows(file, 'oncely') > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(rows(file, 'oncely'), 1, 'the timer swept the expired rows');
      await store.close();
    });
  });

  describe('options', () => {
    const database = ':memory:';

    it('has its defaults in SQLITE_DEFAULTS', () => {
      assert.equal(SQLITE_DEFAULTS.namespace, 'oncely');
      assert.equal(SQLITE_DEFAULTS.table, 'oncely_records');
      assert.equal(SQLITE_DEFAULTS.busyTimeoutMs, 5000);
      assert.equal(SQLITE_DEFAULTS.sweepIntervalMs, 60_000);
      assert.equal(SQLITE_DEFAULTS.sweepBatchSize, 500);
      assert.equal(typeof SQLITE_DEFAULTS.clock(), 'number');
      assert.ok(Object.isFrozen(SQLITE_DEFAULTS));
    });

    it('rejects unknown and invalid options with ERR_ONCELY_INVALID_OPTION', () => {
      const bad: unknown[] = [
        undefined,
        null,
        'oncely.db',
        {},
        { database: '' },
        { database: 42 },
        { database: { prepare() {} } },
        { database, tabel: 'typo' },
        { database, namespace: '' },
        { database, namespace: 7 },
        { database, busyTimeoutMs: -1 },
        { database, busyTimeoutMs: 1.5 },
        { database, busyTimeoutMs: Number.NaN },
        { database, busyTimeoutMs: '5000' },
        { database, sweepIntervalMs: -1 },
        { database, sweepIntervalMs: Number.POSITIVE_INFINITY },
        { database, sweepIntervalMs: 2 ** 31 },
        { database, sweepBatchSize: 0 },
        { database, clock: 5 },
        { database, table: '' },
        { database, table: '1records' },
        { database, table: 'x'.repeat(64) },
      ];
      for (const options of bad) {
        assert.throws(() => sqliteStore(options as never), isInvalidOption, JSON.stringify(options));
      }
    });

    it('rejects a table name with SQL in it, or a reserved one', () => {
      for (const table of [
        'records; DROP TABLE users',
        'records"--',
        'x" (a); DROP TABLE y; --',
        'records WHERE 1',
        '"records"',
        'main.records',
        'sqlite_master',
        'SQLITE_x',
      ]) {
        assert.throws(() => sqliteStore({ database, table }), isInvalidOption, table);
      }
    });

    it('accepts valid options, undefined meaning the default', async () => {
      const store = sqliteStore({
        database,
        namespace: undefined,
        table: '_T0',
        busyTimeoutMs: 0,
        sweepIntervalMs: 0,
        sweepBatchSize: 1,
        clock: () => 0,
      });
      assert.equal(store.name, 'sqlite');
      assert.equal((await store.acquire(input('a', Date.now()))).acquired, true);
      await store.close();
    });
  });
});
