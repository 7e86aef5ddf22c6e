// The auditor against Oncely's own: an API on @oncely/fastify and the gateway in front of a plain
// service, both on a memory store. Every case must pass; the failing first answer is a choice (info).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { memoryStore } from '@oncely/core';
import { startGateway } from '../../gateway/src/test-gateway.ts';
import { planCheck, type Report, runCheck } from './index.ts';
import { startTestApi } from './test-servers.ts';

function verdicts(report: Report): Record<string, string> {
  return Object.fromEntries(report.cases.map((c) => [c.id, c.verdict]));
}

const everyCase = (failure: string) => ({
  replay: 'pass',
  mismatch: 'pass',
  concurrent: 'pass',
  'missing-key': 'pass',
  'long-key': 'pass',
  'non-ascii-key': 'pass',
  'two-keys': 'pass',
  disconnect: 'pass',
  failure,
  tenants: 'pass',
});

describe('an API on @oncely/fastify', () => {
  it('passes every case, counted by the count URL', { timeout: 30_000 }, async () => {
    const api = await startTestApi({ idempotency: {} });
    after(() => api.close());
    const options = {
      url: `${api.url}/payments`,
      body: '{"amount":1999}',
      failBody: '{"fail":true}',
      tenantHeader: 'x-tenant',
      countUrl: `${api.url}/payments/count`,
      waitMs: 2000,
    };
    const report = await runCheck(options);
    const { requests } = planCheck(options);
    assert.ok(
      report.requests >= requests.typical && report.requests <= requests.max,
      `${report.requests} requests, planned ${requests.typical} to ${requests.max}`,
    );
    assert.deepEqual(verdicts(report), everyCase('info'), JSON.stringify(report.cases.map((c) => c.summary)));
    assert.equal(report.ok, true);
    assert.equal(report.counting, 'count-url');
    // The 402 is released by the default cache policy: the corrected request under the key ran.
    assert.match(report.cases.find((c) => c.id === 'failure')!.summary, /^not stored: .* ran \(201\)$/);
    for (const id of ['replay', 'mismatch', 'concurrent', 'disconnect'] as const) {
      assert.deepEqual(report.cases.find((c) => c.id === id)!.executions, { count: 1, by: 'count-url' }, id);
    }
    const concurrent = report.cases.find((c) => c.id === 'concurrent')!;
    assert.deepEqual(concurrent.aggregate?.statuses, { 201: 1, 409: 49 });
    // One payment per key that runs: replay, mismatch, concurrent, disconnect, the corrected
    // request of the failure case, and one per tenant.
    assert.equal(api.created(), 7);
  });

  it('under the stripe cache policy, the failing first answer is stored and replayed: pass', {
    timeout: 30_000,
  }, async () => {
    const api = await startTestApi({ idempotency: { cache: 'stripe' } });
    after(() => api.close());
    const report = await runCheck({
      url: `${api.url}/payments`,
      body: '{"amount":1999}',
      failBody: '{"fail":true}',
      cases: ['replay', 'failure'],
    });
    const failure = report.cases.find((c) => c.id === 'failure')!;
    assert.equal(failure.verdict, 'pass', failure.summary);
    assert.equal(failure.summary, 'stored: the retry replays the 402');
    assert.ok(
      failure.details.some((d) => /refused \(422\)/.test(d)),
      failure.details.join('\n'),
    );
  });

  it('with concurrency wait, the duplicates all get the one response: pass', {
    timeout: 30_000,
  }, async () => {
    const api = await startTestApi({ idempotency: { concurrency: 'wait', maxWaitMs: 5000, waitPollMs: 10 } });
    after(() => api.close());
    const report = await runCheck({
      url: `${api.url}/payments`,
      body: '{"amount":1}',
      cases: ['concurrent'],
    });
    const [result] = report.cases;
    assert.equal(result!.verdict, 'pass', result!.summary);
    assert.match(result!.summary, /^1 execution; 49 duplicates waited and got its response/);
    assert.equal(api.created(), 1);
  });
});

describe('the gateway in front of a plain service', () => {
  it('passes every case it can run, told by the responses alone', { timeout: 30_000 }, async () => {
    const running = await startGateway({ store: memoryStore(), scopeHeader: 'x-tenant', required: true });
    after(() => running.close());
    // /slow answers after 150 ms with {n, aborted}: no id field, so executions are told by the bodies.
    const report = await runCheck({
      url: `${running.url}/slow?ms=150`,
      body: '{"amount":1999}',
      tenantHeader: 'X-Tenant: {{tenant}}',
      waitMs: 3000,
    });
    const expected: Record<string, string> = { ...everyCase('skip') };
    assert.deepEqual(verdicts(report), expected, JSON.stringify(report.cases.map((c) => c.summary)));
    assert.equal(report.counting, 'responses');
    assert.deepEqual(report.cases.find((c) => c.id === 'concurrent')!.executions, {
      count: 1,
      by: 'response bodies',
    });
    // One run per key that got past the gateway: replay, mismatch, concurrent, disconnect, two tenants.
    assert.equal(running.upstream.app.count('slow'), 6);
  });
});
