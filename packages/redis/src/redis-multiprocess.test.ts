import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, it } from 'node:test';
import { nextMessage } from '@oncely/conformance';
import { createOncely } from '@oncely/core';
import type { Redis } from 'ioredis';
import { redisStore } from './index.ts';
import { connectIoredis, deleteKeys } from './test-redis.ts';
// Types only: importing a value would run the worker in this process.
import type { GoMessage, RunOutcome, WorkerMessage } from './test-worker.ts';

const WORKERS = 4;
const CALLS = 50;
const HOLD_MS = 1000;

/** The next message of `type` from `child`; rejects on a worker error or an early exit. */
const next = <T extends WorkerMessage['type']>(child: ChildProcess, type: T) =>
  nextMessage<WorkerMessage, T>(child, type);

const prefix = `test-mp-${randomBytes(4).toString('hex')}:`;
const children: ChildProcess[] = [];
let admin: Redis | undefined;
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill();
  if (admin) await deleteKeys(admin, prefix);
  admin?.disconnect();
});

it(`runs the work exactly once for ${WORKERS * CALLS} concurrent calls from ${WORKERS} processes`, {
  timeout: 60_000,
}, async (t) => {
  admin = await connectIoredis();
  const worker = new URL('./test-worker.ts', import.meta.url);
  for (let w = 0; w < WORKERS; w++) {
    // The child inherits execArgv, so it runs .ts and resolves @oncely/core like this process.
    const child = fork(worker, [prefix, String(w)], {
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.push(child);
  }
  await Promise.all(children.map((child) => next(child, 'ready')));

  // The starting gate: every worker blocks on BLPOP of one list; one LPUSH of one item per worker
  // wakes them all in the same turn of the server's event loop, so the four processes fire their
  // calls together instead of in the order they happened to start.
  const go: GoMessage = {
    type: 'go',
    key: 'contended',
    count: CALLS,
    gateKey: `${prefix}gate`,
    counterKey: `${prefix}executions`,
    holdMs: HOLD_MS,
  };
  const done = Promise.all(children.map((child) => next(child, 'done')));
  for (const child of children) child.send(go);
  await admin.lpush(go.gateKey, ...children.map((_, i) => `go-${i}`));
  const reports = await done;

  const all: Array<RunOutcome & { worker: number }> = reports.flatMap((r, w) =>
    r.outcomes.map((o) => ({ ...o, worker: w })),
  );
  assert.equal(all.length, WORKERS * CALLS);
  const count = (outcome: RunOutcome['outcome']): number => all.filter((o) => o.outcome === outcome).length;
  const errors = all.filter((o) => o.outcome === 'error');
  assert.deepEqual(errors, [], 'no call failed otherwise than with a 409 conflict');

  // The side effect, counted twice: by the processes themselves and by Redis.
  const executions = reports.reduce((sum, r) => sum + r.executions, 0);
  assert.equal(executions, 1, `expected exactly one execution in total, got ${executions}`);
  assert.equal(await admin.get(go.counterKey), '1', 'the work INCR-ed the counter once');
  assert.equal(count('executed'), 1);
  assert.equal(count('executed') + count('replayed') + count('conflict'), WORKERS * CALLS);

  // Every replay returns the one execution's result.
  const executed = all.find((o) => o.outcome === 'executed')!;
  assert.deepEqual(executed.value, { worker: executed.worker, counter: 1 });
  for (const o of all.filter((o) => o.outcome === 'replayed')) assert.deepEqual(o.value, executed.value);

  // The test means something only if the processes really raced: every worker fired its first call
  // while the winner's work was still running (the key in progress), not after it was all over.
  const work = reports.find((r) => r.work)?.work;
  assert.ok(work, 'the executing worker reported its work window');
  reports.forEach((r, w) => {
    const first = Math.min(...r.outcomes.map((o) => o.start));
    assert.ok(first < work.end, `worker ${w} started its calls only after the work had finished`);
  });
  t.diagnostic(
    `executed by worker ${executed.worker}; ${count('conflict')} conflicts (409), ${count('replayed')} replays; ` +
      `first call per worker ${reports.map((r) => `${(Math.min(...r.outcomes.map((o) => o.start)) - work.start).toFixed(1)}ms`).join(', ')} after the work began (negative: before)`,
  );

  // Afterwards, any process replays it: the key is completed, not released.
  const oncely = createOncely({ store: redisStore({ client: admin, prefix }) });
  const replay = await oncely.run({ scope: 'multiprocess', key: go.key }, () => {
    throw new Error('must not run again');
  });
  assert.deepEqual(replay, executed.value);
  assert.equal(await admin.get(go.counterKey), '1');
});
