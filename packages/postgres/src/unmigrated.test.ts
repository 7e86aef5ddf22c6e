// A PostgreSQL store whose table was never created (migrate() not called): every request is refused
// with 503, and the problem says the store answered with an error, not that it could not be
// reached; the cause (relation does not exist) is in the store_error event for the operator.
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { httpIdempotency, type OncelyEvent } from '@oncely/core';
import { postgresStore } from './postgres-store.ts';
import { testPool, uniqueName } from './test-database.ts';

const pools: Array<{ end(): Promise<void> }> = [];
after(async () => {
  for (const pool of pools) await pool.end();
});

it('without migrate(): 503 that says the store answered with an error, and the cause in the event', async () => {
  const pool = await testPool();
  pools.push(pool);
  const events: OncelyEvent[] = [];
  const http = httpIdempotency({
    store: postgresStore({ pool, table: uniqueName('oncely_never_migrated'), sweepIntervalMs: 0 }),
    onEvent: (event) => events.push(event),
  });
  const decision = await http.handle({ method: 'POST', path: '/payments', keyHeader: 'k1', body: '{}' });
  assert.equal(decision.kind, 'respond');
  if (decision.kind !== 'respond') return;
  assert.equal(decision.response.status, 503);
  const problem = JSON.parse(new TextDecoder().decode(decision.response.body)) as { detail: string };
  assert.doesNotMatch(problem.detail, /could not be reached/);
  assert.match(problem.detail, /answered with an error/);
  const error = events.find((event) => event.type === 'store_error')?.error as Error | undefined;
  assert.match(
    String(error?.message),
    /does not exist\. Run `await store\.migrate\(\)`/,
    'the fix, for the operator',
  );
  assert.equal((error?.cause as { code?: string } | undefined)?.code, '42P01', 'undefined_table');
});

it('a store that cannot be reached still says so', async () => {
  // Port 1: nothing listens there, nothing is started or stopped.
  const pg = (await import('pg')).default;
  const unreachable = new pg.Pool({
    connectionString: 'postgres://postgres@127.0.0.1:1/test',
    connectionTimeoutMillis: 500,
  });
  unreachable.on('error', () => {});
  pools.push(unreachable);
  const http = httpIdempotency({ store: postgresStore({ pool: unreachable, sweepIntervalMs: 0 }) });
  const decision = await http.handle({ method: 'POST', path: '/payments', keyHeader: 'k1', body: '{}' });
  assert.ok(decision.kind === 'respond');
  const problem = JSON.parse(new TextDecoder().decode(decision.response.body)) as { detail: string };
  assert.match(problem.detail, /could not be reached/);
});
