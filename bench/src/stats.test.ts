import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { median, orderFor, type RunSample, summarise } from './stats.ts';

function sample(caseId: string, repeat: number, rps: number): RunSample {
  return {
    caseId,
    repeat,
    rps,
    p50: rps / 100,
    p99: rps / 10,
    requests: 100,
    errors: 0,
    non2xx: 0,
    executions: 100,
    cpuUsPerRequest: 50,
  };
}

describe('median', () => {
  it('takes the middle of an odd count and the mean of the two middles of an even one', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });
});

describe('summarise', () => {
  it('divides each repeat by the baseline of the same repeat, then takes the median', () => {
    const samples = [
      sample('bare', 0, 1000),
      sample('bare', 1, 2000),
      sample('bare', 2, 1000),
      sample('x', 0, 500),
      sample('x', 1, 1800),
      sample('x', 2, 700),
    ];
    const summary = summarise(samples, (id) => (id === 'x' ? 'bare' : id)).find((s) => s.caseId === 'x');
    assert.ok(summary);
    // ratios 0.5, 0.9, 0.7: median 0.7 (a median of rps, 700 / 1000, would hide repeat 1's fast machine).
    assert.equal(summary.ratio, 0.7);
    assert.equal(summary.rps, 700);
    assert.equal(summary.runs, 3);
    assert.equal(summary.executionsPerRequest, 1);
  });

  it('gives no ratio when the baseline of that repeat is missing', () => {
    const [summary] = summarise([sample('x', 0, 500)], () => 'bare');
    assert.ok(summary && Number.isNaN(summary.ratio));
  });
});

describe('orderFor', () => {
  it('alternates the order across repeats without touching its input', () => {
    const items = ['a', 'b', 'c'];
    assert.deepEqual(orderFor(items, 0), ['a', 'b', 'c']);
    assert.deepEqual(orderFor(items, 1), ['c', 'b', 'a']);
    assert.deepEqual(orderFor(items, 2), ['a', 'b', 'c']);
    assert.deepEqual(items, ['a', 'b', 'c']);
  });
});
