import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Case } from './cases.ts';
import { correctnessTable, replaceSection, speedTable } from './report.ts';

const bare: Case = {
  id: 'express-bare',
  group: 'baseline',
  framework: 'express',
  variant: 'bare',
  path: 'bare',
  baseline: 'express-bare',
  label: 'express (bare)',
};
const first: Case = { ...bare, id: 'x-first', group: 'oncely', variant: 'oncely', path: 'first', label: 'x' };

describe('speedTable', () => {
  it('prints measured cases and marks the others as not run', () => {
    const table = speedTable(
      [bare, first],
      [
        {
          caseId: 'express-bare',
          runs: 3,
          rps: 12345.6,
          p50: 3,
          p99: 9,
          ratio: 1,
          errors: 0,
          non2xx: 0,
          executionsPerRequest: 1,
          cpuUsPerRequest: 80.4,
        },
      ],
    );
    const lines = table.split('\n');
    assert.equal(lines.length, 4);
    assert.match(
      lines[2] ?? '',
      /^\| express \(bare\) \| — \| 12,346 \| 3 \| 9 \| 1\.00 \| 80 \| 1\.00 \| 0 \/ 0 \|$/,
    );
    assert.match(lines[3] ?? '', /\| x \| first execution \| not run \|/);
  });
});

describe('correctnessTable', () => {
  it('shows the spread of side effects per key and the status counts', () => {
    const table = correctnessTable([
      {
        label: 'peer',
        result: {
          effectsPerKey: [1, 3, 1],
          wrongKeys: 1,
          statuses: { '409': 2, '201': 5 },
          retryStatuses: { '201': 3 },
          effectsAfterRetry: [1, 3, 1],
          retryBodyMismatches: 1,
        },
      },
      { label: 'broken', result: { error: 'boom' } },
    ]);
    assert.match(table, /\| peer \| 1–3 \| 1 \| 201×5 409×2 \| 201×3 \(1 bodies differ\) \| 1–3 \|/);
    assert.match(table, /\| broken \| failed: boom \|/);
  });
});

describe('replaceSection', () => {
  it('replaces only what lies between the markers and keeps them', () => {
    const doc = 'a\n<!-- bench:t:start -->\nold\n<!-- bench:t:end -->\nb\n';
    assert.equal(
      replaceSection(doc, 't', 'new'),
      'a\n<!-- bench:t:start -->\nnew\n<!-- bench:t:end -->\nb\n',
    );
  });

  it('refuses a document without the markers', () => {
    assert.throws(() => replaceSection('no markers', 't', 'x'), /bench:t:start/);
  });
});
