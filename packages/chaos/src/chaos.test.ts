// The short form of the chaos test (docs/reliability.md), inside `npm test`: per store, 4 s of
// duplicate bursts, client timeouts and retries at two server processes, while one of them is
// SIGKILLed and restarted every 0.7–1.8 s; then every check of checks.ts. Against the real Redis and
// PostgreSQL: an unreachable server fails the run with a message that says so.
// The long form: `npm run chaos -- --seconds 120 --store all`.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { CHAOS_DEFAULTS, formatReport, runScenario } from './chaos.ts';
import { SCENARIOS } from './scenarios.ts';

const seed = randomBytes(4).readUInt32BE();

describe('chaos: SIGKILLed servers under duplicate and timed-out traffic', () => {
  for (const [index, store] of SCENARIOS.entries()) {
    it(`${store}: every extra execution is explained by a kill, nothing else ever runs twice`, {
      timeout: 60_000,
    }, async (t) => {
      const report = await runScenario(store, {
        ...CHAOS_DEFAULTS,
        seconds: 4,
        maxKeys: 50,
        killEveryMs: [700, 1_800],
        seed: (seed + index) >>> 0,
      });
      t.diagnostic(formatReport(report));
      const violations = report.violations
        .map((v) => `${v.check}${v.key ? ` ${v.key}` : ''}: ${v.detail}`)
        .join('\n\n');
      assert.equal(
        report.violations.length,
        0,
        `the chaos run (${store}, seed ${report.seed}) found ${report.violations.length} violation(s):\n\n${violations}`,
      );
      assert.ok(report.kills >= 1, 'the chaos loop killed at least one server');
      assert.equal(report.succeeded, report.keys, 'every key succeeded');
    });
  }
});
