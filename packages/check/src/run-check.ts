/**
 * `runCheck`: the cases one after the other against one endpoint, each on its own keys, into one
 * report. Sequential on purpose: a case's count URL reads must see that case's requests only.
 */

import { readFileSync } from 'node:fs';
import { concurrentCase } from './cases/concurrent.ts';
import { disconnectCase } from './cases/disconnect.ts';
import { failureCase } from './cases/failure.ts';
import { longKeyCase, missingKeyCase, nonAsciiKeyCase, twoKeysCase } from './cases/keys.ts';
import { mismatchCase } from './cases/mismatch.ts';
import { type CaseOutcome, type CaseRun, type RunState, skipped } from './cases/outcome.ts';
import { replayCase } from './cases/replay.ts';
import { tenantsCase } from './cases/tenants.ts';
import { type CheckOptions, resolveOptions } from './options.ts';
import { caseTitle } from './plan.ts';
import { Probe } from './probe.ts';
import type { CaseId, CaseResult, Report, Verdict } from './report.ts';

const RUNS: Readonly<Record<CaseId, CaseRun>> = {
  replay: replayCase,
  mismatch: mismatchCase,
  concurrent: concurrentCase,
  'missing-key': missingKeyCase,
  'long-key': longKeyCase,
  'non-ascii-key': nonAsciiKeyCase,
  'two-keys': twoKeysCase,
  disconnect: disconnectCase,
  failure: failureCase,
  tenants: tenantsCase,
};

/** This package's version, from its package.json (src/ and dist/ both sit one level below it). */
export function checkVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/**
 * Audit the idempotency of one endpoint from the outside. Sends requests to the URL's origin only,
 * never follows a redirect, and resolves with the report (a failing API is a report with `ok: false`,
 * not an error). Throws `CheckError` when it cannot start: invalid options, a count URL on another
 * origin or one that answers no count.
 * @example
 * const report = await runCheck({
 *   url: 'http://127.0.0.1:3000/payments',
 *   headers: [['Authorization', 'Bearer sk_test_demo']],
 *   body: '{"amount":1999,"currency":"eur","customer":"cus_42"}',
 * });
 * process.stdout.write(renderReport(report));
 */
export async function runCheck(options: CheckOptions): Promise<Report> {
  const resolved = resolveOptions(options);
  const probe = new Probe(resolved);
  const startedAt = new Date();
  const started = performance.now();
  try {
    await probe.checkCount();
    const state: RunState = {};
    const cases: CaseResult[] = [];
    let stop: string | undefined;
    const total = resolved.cases.length;
    for (const [i, id] of resolved.cases.entries()) {
      const title = caseTitle(id, resolved);
      const index = i + 1;
      resolved.onProgress?.({ phase: 'start', case: id, title, index, total });
      const caseStarted = performance.now();
      const outcome: CaseOutcome = stop ? skipped(stop) : await RUNS[id](probe, state);
      if (id === 'replay' && !state.first) {
        stop = 'not run: the first request did not succeed, so nothing else can be judged';
      }
      cases.push({
        id,
        title,
        verdict: outcome.verdict,
        summary: outcome.summary,
        details: outcome.details ?? [],
        exchanges: outcome.exchanges ?? [],
        ...(outcome.aggregate ? { aggregate: outcome.aggregate } : {}),
        ...(outcome.executions ? { executions: outcome.executions } : {}),
        references: outcome.references,
        ms: Math.round(performance.now() - caseStarted),
      });
      resolved.onProgress?.({ phase: 'done', case: id, title, index, total, verdict: outcome.verdict });
    }
    const totals: Record<Verdict, number> = { pass: 0, warn: 0, fail: 0, info: 0, skip: 0 };
    for (const result of cases) totals[result.verdict]++;
    return {
      tool: '@oncely/check',
      version: checkVersion(),
      target: { method: resolved.method, url: resolved.url.href },
      keyPrefix: probe.keyPrefix,
      startedAt: startedAt.toISOString(),
      ms: Math.round(performance.now() - started),
      requests: probe.sent,
      counting: resolved.countUrl ? 'count-url' : 'responses',
      totals,
      ok: totals.fail === 0,
      cases,
    };
  } finally {
    probe.close();
  }
}
