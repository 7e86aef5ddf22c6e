// Real crashes in transactional mode: a child process runs the request and is SIGKILLed (or frozen)
// at a point inside its transaction. Whatever the point, the retry that follows once the dead
// owner's lease lapsed leaves exactly one payment and a completed record: the writes and the
// completion commit together or not at all.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startLineWorker } from '@oncely/conformance';
import { createOncely, isOncelyError, type OncelyEvent, recordId } from '@oncely/core';
import type pg from 'pg';
import { postgresStore, transactional } from './index.ts';
import { countRows, dropTables, testPool, uniqueName } from './test-database.ts';
import type { CrashConfig } from './test-transactional-worker.ts';

const worker = new URL('./test-transactional-worker.ts', import.meta.url).pathname;

const startWorker = (config: CrashConfig) => startLineWorker(worker, config);

describe('transactional mode, crashes', { timeout: 60_000 }, () => {
  let pool: pg.Pool;
  const table = uniqueName('oncely_crash');
  const payments = uniqueName('payments_crash');
  const children: ChildProcess[] = [];
  before(async () => {
    pool = await testPool({ max: 10 });
    await postgresStore({ pool, table }).migrate();
    await pool.query(
      `CREATE TABLE ${payments} (id bigserial PRIMARY KEY, key text NOT NULL, amount integer NOT NULL)`,
    );
  });
  after(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await dropTables(pool, table, payments);
    await pool.end();
  });

  /** The parent's side: the same table and namespace as the worker, a retry of the same request. */
  const survivor = (namespace: string) => {
    const store = postgresStore({ pool, table, namespace, sweepIntervalMs: 0 });
    const events: OncelyEvent[] = [];
    const tx = transactional({
      oncely: createOncely({ store, onEvent: (e) => events.push(e) }),
      store,
      pool,
    });
    const retry = (key: string) =>
      tx.execute({ scope: 'tenant', key, fingerprint: 'fp' }, async (client) => {
        const { rows } = await client.query(
          `INSERT INTO ${payments} (key, amount) VALUES ($1, 500) RETURNING id`,
          [key],
        );
        return { status: 201, headers: [], body: new TextEncoder().encode(JSON.stringify(rows[0])) };
      });
    return { store, events, retry };
  };
  const launch = (mode: CrashConfig['mode'], leaseMs: number, commitWindowMs = 10_000) => {
    const config: CrashConfig = {
      mode,
      table,
      namespace: uniqueName('ns'),
      payments,
      key: uniqueName('order'),
      leaseMs,
      commitWindowMs,
    };
    const started = startWorker(config);
    children.push(started.child);
    return { ...started, config };
  };
  const backendState = async (pid: number): Promise<string | null> =>
    (await pool.query('SELECT state FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0]?.state ?? null;
  const recordOf = async (namespace: string, key: string) =>
    (
      await pool.query(`SELECT state, attempt FROM ${table} WHERE namespace = $1 AND id = $2`, [
        namespace,
        recordId('tenant', key),
      ])
    ).rows[0];

  /** After the kill: 409 at once (no lock left behind), then, once the lease lapsed, one clean run. */
  async function retryAfterLease(namespace: string, key: string, leaseEndsBy: number): Promise<void> {
    const { retry, events } = survivor(namespace);
    const asked = performance.now();
    await assert.rejects(
      retry(key),
      (error) => isOncelyError(error) && error.code === 'ERR_ONCELY_IN_PROGRESS',
    );
    assert.ok(performance.now() - asked < 1000, 'the dead owner left no lock behind: 409 at once');
    await sleep(Math.max(0, leaseEndsBy - Date.now()) + 100);
    const result = await retry(key);
    assert.equal(result.replayed, false);
    assert.equal(result.response.status, 201);
    assert.ok(
      events.some((e) => e.type === 'executed' && e.takeover === true),
      'the retry took the key over',
    );
    assert.equal(await countRows(pool, payments, 'key = $1', [key]), 1, 'exactly one payment');
    assert.deepEqual({ ...(await recordOf(namespace, key)) }, { state: 'completed', attempt: 2 });
    const replay = await retry(key);
    assert.deepEqual(
      [replay.replayed, Buffer.from(replay.response.body)],
      [true, Buffer.from(result.response.body)],
    );
  }

  it('SIGKILL inside the work, after its INSERT: rolled back; the retry pays once', async () => {
    const leaseMs = 1500;
    const w = launch('in-work', leaseMs);
    const pid = Number((await w.line('inserted')).split(' ')[1]);
    assert.equal(await backendState(pid), 'idle in transaction');
    const killedAt = Date.now();
    w.child.kill('SIGKILL');
    assert.equal(await w.exited, 'SIGKILL');
    assert.equal(
      await countRows(pool, payments, 'key = $1', [w.config.key]),
      0,
      'the INSERT never committed',
    );
    // Renewals stopped at the kill at the latest, so the lease ends within leaseMs of it.
    await retryAfterLease(w.config.namespace, w.config.key, killedAt + leaseMs);
  });

  it('SIGKILL after the completion UPDATE, before COMMIT: both rolled back; the retry pays once', async () => {
    const leaseMs = 1500;
    const w = launch('after-complete', leaseMs);
    const pid = Number((await w.line('completed')).split(' ')[1]);
    assert.equal(await backendState(pid), 'idle in transaction');
    const seen = await recordOf(w.config.namespace, w.config.key);
    assert.equal(seen.state, 'in_progress', 'others do not see the uncommitted completion');
    const killedAt = Date.now();
    w.child.kill('SIGKILL');
    assert.equal(await w.exited, 'SIGKILL');
    assert.equal(await countRows(pool, payments, 'key = $1', [w.config.key]), 0);
    await retryAfterLease(w.config.namespace, w.config.key, killedAt + leaseMs);
  });

  it('a process frozen after the completion UPDATE: the server ends its session after commitWindowMs', async () => {
    const leaseMs = 4000;
    const commitWindowMs = 800;
    const w = launch('after-complete', leaseMs, commitWindowMs);
    const pid = Number((await w.line('completed')).split(' ')[1]);
    const frozenAt = Date.now();
    // The frozen owner holds the record's row lock: this acquire waits for it, until the server
    // gives up on the silent session and rolls it back. Then it finds the key in progress (409).
    const { store } = survivor(w.config.namespace);
    const now = Date.now();
    const result = await store.acquire({
      id: recordId('tenant', w.config.key),
      fingerprint: 'fp',
      token: 'probe',
      now,
      leaseUntil: now + leaseMs,
      expiresAt: now + 60_000,
    });
    const waited = Date.now() - frozenAt;
    assert.equal(result.acquired, false);
    assert.equal(result.record.state, 'in_progress', 'the completion was rolled back with the session');
    assert.ok(waited >= commitWindowMs - 100 && waited < commitWindowMs + 3000, `waited ${waited} ms`);
    assert.equal(await backendState(pid), null, 'the server ended the frozen session');
    assert.equal(await countRows(pool, payments, 'key = $1', [w.config.key]), 0);
    await retryAfterLease(w.config.namespace, w.config.key, frozenAt + leaseMs);
    w.child.kill('SIGKILL');
    await w.exited;
  });

  it('without a commit window, a frozen owner blocks the key until it dies (why the window exists)', async () => {
    const w = launch('after-complete', 4000, 0);
    await w.line('completed');
    const { store } = survivor(w.config.namespace);
    const now = Date.now();
    const probe = store.acquire({
      id: recordId('tenant', w.config.key),
      fingerprint: 'fp',
      token: 'probe',
      now,
      leaseUntil: now + 4000,
      expiresAt: now + 60_000,
    });
    const early = await Promise.race([probe.then(() => 'answered'), sleep(2000).then(() => 'blocked')]);
    assert.equal(early, 'blocked');
    w.child.kill('SIGKILL');
    await w.exited;
    const result = await probe;
    assert.deepEqual([result.acquired, result.record.state], [false, 'in_progress']);
    assert.equal(await countRows(pool, payments, 'key = $1', [w.config.key]), 0);
  });
});
