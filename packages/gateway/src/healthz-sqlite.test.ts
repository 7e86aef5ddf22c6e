// The gateway on a SQLite file whose write lock another process holds: keyed requests wait for the
// lock, everything else keeps being answered, and healthz says the store is degraded.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type SqliteStore, sqliteStore } from '@oncely/sqlite';
// The lock holder of the SQLite package's own lock tests: a child process holding BEGIN IMMEDIATE.
import { holdWriteLock, type LockHolder, maxEventLoopGap } from '../../sqlite/src/test-lock-holder.ts';
import { post, send } from './test-client.ts';
import { type InProcessGateway, startGateway } from './test-gateway.ts';

const HOLD_MS = 1500;
// Generous for a loaded 2-core machine; a synchronous lock wait takes the whole hold (1.5 s).
const QUICK_MS = 300;

const dir = mkdtempSync(join(tmpdir(), 'oncely-gateway-sqlite-lock-'));
let gateway: InProcessGateway | undefined;
let store: SqliteStore | undefined;
let holder: LockHolder | undefined;
after(async () => {
  holder?.kill();
  await gateway?.close();
  // The gateway takes a store, never closes it.
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

it('answers healthz 503 degraded and passthrough requests at once while another process holds the SQLite lock', {
  timeout: 30_000,
}, async (t) => {
  const file = join(dir, 'gateway.db');
  store = sqliteStore({ database: file, busyTimeoutMs: 10_000, sweepIntervalMs: 0 });
  gateway = await startGateway({ store });
  const g = gateway;
  const healthy = await send(g.url, '/_oncely/healthz', { method: 'GET' });
  assert.equal(healthy.status, 200);
  assert.deepEqual(healthy.json(), { status: 'ok', store: 'sqlite' });

  holder = await holdWriteLock(file, HOLD_MS);
  const { lockedAt } = holder;
  const { settled, maxGapMs } = await maxEventLoopGap(async () => {
    // A keyed request: its acquire waits for the lock.
    const keyed = post(g.url, '/payments', 'held-key').then((reply) => ({ reply, at: performance.now() }));
    // Counted from when the GET is due, 100 ms in, not from when it was sent: with a blocked event
    // loop the sleep itself lasts until the lock is released, and the GET then looks fast.
    const due = performance.now() + 100;
    await sleep(100);
    const timedGet = async (path: string) => {
      const reply = await send(g.url, path, { method: 'GET' });
      return { reply, ms: performance.now() - due, at: performance.now() };
    };
    const [passthrough, health] = await Promise.all([timedGet('/payments'), timedGet('/_oncely/healthz')]);
    return { passthrough, health, keyed: await keyed };
  });
  const releasedAt = await holder.released;
  assert.equal(settled.status, 'fulfilled', String(settled.status === 'rejected' && settled.reason));
  const { passthrough, health, keyed } = settled.value;
  t.diagnostic(
    `during a ${HOLD_MS} ms lock: passthrough GET answered ${passthrough.ms.toFixed(1)} ms after it ` +
      `was due, healthz ${health.ms.toFixed(1)} ms, max event-loop gap ${maxGapMs.toFixed(1)} ms; the keyed POST ` +
      `answered ${(keyed.at - lockedAt).toFixed(0)} ms after the lock was taken, ` +
      `${(keyed.at - releasedAt).toFixed(0)} ms after its release was reported`,
  );

  assert.equal(passthrough.reply.status, 200);
  assert.ok(passthrough.ms < QUICK_MS, `the passthrough GET took ${passthrough.ms.toFixed(1)} ms`);
  assert.equal(health.reply.status, 503);
  assert.deepEqual(health.reply.json(), {
    status: 'degraded',
    store: 'sqlite',
    detail: 'the database is locked by another connection',
  });
  assert.ok(health.ms < QUICK_MS, `healthz took ${health.ms.toFixed(1)} ms`);
  // Both were answered while the keyed request was still waiting for the lock, not after it.
  assert.ok(passthrough.at < keyed.at, 'the passthrough GET answered before the keyed request');
  assert.ok(health.at < keyed.at, 'healthz answered before the keyed request');
  assert.ok(maxGapMs < 100, `the event loop stalled for ${maxGapMs.toFixed(1)} ms`);

  assert.equal(keyed.reply.status, 201, 'the keyed request ran once the lock was free');
  assert.ok(keyed.at - lockedAt >= HOLD_MS - 100, 'the keyed request waited for the lock');
  assert.equal(g.upstream.app.count('payments'), 1);
  const recovered = await send(g.url, '/_oncely/healthz', { method: 'GET' });
  assert.equal(recovered.status, 200);
  assert.deepEqual(recovered.json(), { status: 'ok', store: 'sqlite' });
});
