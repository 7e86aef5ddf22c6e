// The auditor against APIs that get idempotency wrong: a bare route, and layers with the faults
// peers shipped (test-broken-servers.ts). Each fault must be caught by its case, with the verdict
// it deserves, and must not turn cases that do not exercise it into failures.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type CaseResult, type Report, runCheck } from './index.ts';
import { type Fault, startBrokenServer } from './test-broken-servers.ts';
import { startTestApi } from './test-servers.ts';

const verdicts = (report: Report): Record<string, string> =>
  Object.fromEntries(report.cases.map((c) => [c.id, c.verdict]));
const find = (report: Report, id: CaseResult['id']): CaseResult => report.cases.find((c) => c.id === id)!;
const show = (report: Report): string =>
  report.cases.map((c) => `${c.id}: ${c.verdict} ${c.summary}`).join('\n');

/** The key cases pass on every broken layer: each validates and requires keys. */
const KEYS_PASS = { 'missing-key': 'pass', 'long-key': 'pass', 'non-ascii-key': 'pass', 'two-keys': 'pass' };

async function audit(fault: Fault, countUrl: boolean): Promise<Report> {
  const server = await startBrokenServer(fault);
  after(() => server.close());
  return runCheck({
    url: `${server.url}/things`,
    body: '{"amount":5}',
    failBody: '{"fail":true}',
    waitMs: 1000,
    ...(countUrl ? { countUrl: `${server.url}/things/count` } : {}),
  });
}

describe('a bare route without idempotency', () => {
  it('fails the replay, reuse, concurrency and disconnect cases; accepts any key', {
    timeout: 30_000,
  }, async () => {
    const api = await startTestApi({ idempotency: false });
    after(() => api.close());
    const report = await runCheck({
      url: `${api.url}/payments`,
      body: '{"amount":1999}',
      failBody: '{"fail":true}',
      tenantHeader: 'x-tenant',
      countUrl: `${api.url}/payments/count`,
      concurrency: 20,
      waitMs: 1000,
    });
    assert.deepEqual(
      verdicts(report),
      {
        replay: 'fail',
        mismatch: 'fail',
        concurrent: 'fail',
        'missing-key': 'info',
        'long-key': 'warn',
        'non-ascii-key': 'warn',
        'two-keys': 'warn',
        disconnect: 'fail',
        failure: 'info',
        // Nothing replays at all, so whether tenants share keys cannot be told.
        tenants: 'skip',
      },
      show(report),
    );
    assert.equal(report.ok, false);
    assert.match(find(report, 'replay').summary, /ran the operation again: the count went up by 2/);
    assert.match(find(report, 'mismatch').summary, /^ran the other payload under the same key/);
    assert.match(find(report, 'concurrent').summary, /^20 executions for one key \(20×201\)/);
    assert.match(find(report, 'disconnect').summary, /^ran twice/);
    assert.match(find(report, 'missing-key').summary, /key is optional/);
  });

  it('without a count URL, still tells the runs apart by their resource ids', {
    timeout: 30_000,
  }, async () => {
    const api = await startTestApi({ idempotency: false, latencyMs: 20 });
    after(() => api.close());
    const report = await runCheck({
      url: `${api.url}/payments`,
      body: '{"amount":1}',
      concurrency: 10,
      cases: ['replay', 'concurrent'],
    });
    assert.match(
      find(report, 'replay').summary,
      /^the retry ran again, with another answer: body differs at byte 11/,
    );
    assert.deepEqual(find(report, 'concurrent').executions, { count: 11, by: 'resource ids' });
  });
});

describe('broken idempotency layers', () => {
  it('a plain SET without NX: concurrent duplicates run side by side (fail)', {
    timeout: 30_000,
  }, async () => {
    // No count URL: the executions are told apart by the ids the duplicates got.
    const report = await audit('set-without-nx', false);
    const concurrent = find(report, 'concurrent');
    assert.equal(concurrent.verdict, 'fail', show(report));
    assert.match(concurrent.summary, /^\d+ executions for one key .* told apart by their resource ids$/);
    assert.ok(concurrent.executions!.count > 1);
    assert.deepEqual(
      { ...verdicts(report), concurrent: 'x' },
      {
        replay: 'pass',
        mismatch: 'pass',
        concurrent: 'x',
        ...KEYS_PASS,
        disconnect: 'pass',
        failure: 'info',
        tenants: 'skip',
      },
      show(report),
    );
  });

  it('a lock as long as the retention: a failed first leaves the key stuck (fail)', {
    timeout: 30_000,
  }, async () => {
    const report = await audit('lock-ttl-is-retention', true);
    const failure = find(report, 'failure');
    assert.equal(failure.verdict, 'fail', show(report));
    assert.match(failure.summary, /^the key stays locked after the failed answer: 409 ×\d+ over 1000 ms/);
    assert.equal(failure.exchanges[0]!.status, 500);
    assert.deepEqual(
      verdicts(report),
      {
        replay: 'pass',
        mismatch: 'pass',
        concurrent: 'pass',
        ...KEYS_PASS,
        disconnect: 'pass',
        failure: 'fail',
        tenants: 'skip',
      },
      show(report),
    );
  });

  it('no fingerprint: the same key with another body is silently replayed (fail)', {
    timeout: 30_000,
  }, async () => {
    const report = await audit('no-fingerprint', true);
    const mismatch = find(report, 'mismatch');
    assert.equal(mismatch.verdict, 'fail', show(report));
    assert.match(
      mismatch.summary,
      /^silently replayed: the other payload got the first response \(201, Idempotent-Replayed\)/,
    );
    assert.deepEqual(mismatch.executions, { count: 1, by: 'count-url' }, 'replayed, not run');
    assert.deepEqual(
      verdicts(report),
      {
        replay: 'pass',
        mismatch: 'fail',
        concurrent: 'pass',
        ...KEYS_PASS,
        disconnect: 'pass',
        failure: 'info',
        tenants: 'skip',
      },
      show(report),
    );
  });

  it('an empty body taken for nothing stored: a 204 runs again on every retry (fail)', {
    timeout: 30_000,
  }, async () => {
    const report = await audit('empty-body-rerun', true);
    const replay = find(report, 'replay');
    assert.equal(replay.verdict, 'fail', show(report));
    assert.match(
      replay.summary,
      /^the retry ran the operation again: the count went up by 2, not 1 \(the first 204 had an empty body/,
    );
    // Every case that retries a completed 204 sees it run again.
    assert.match(find(report, 'mismatch').summary, /^after the reuse, the first body ran again/);
    assert.match(
      find(report, 'concurrent').summary,
      /^the retry after the duplicates ran again \(204; the count went up by 1\)/,
    );
    assert.match(find(report, 'disconnect').summary, /^ran twice/);
    assert.deepEqual(
      verdicts(report),
      {
        replay: 'fail',
        mismatch: 'fail',
        concurrent: 'fail',
        ...KEYS_PASS,
        disconnect: 'fail',
        failure: 'info',
        tenants: 'skip',
      },
      show(report),
    );
  });

  it('without a count URL, an unmarked identical 204 cannot be told from a replay: warn, never pass', {
    timeout: 30_000,
  }, async () => {
    const server = await startBrokenServer('empty-body-rerun');
    after(() => server.close());
    const report = await runCheck({ url: `${server.url}/things`, body: '{"amount":5}', cases: ['replay'] });
    const [replay] = report.cases;
    assert.equal(replay!.verdict, 'warn');
    assert.match(
      replay!.summary,
      /without Idempotent-Replayed: a replay, or a second run .*an empty body is still a response/,
    );
  });
});
