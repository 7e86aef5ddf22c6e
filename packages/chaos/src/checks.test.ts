// The checker on hand-made timelines: each check must catch the one fault it is there for, and a
// clean timeline with a kill-explained takeover must pass. Otherwise a green chaos run proves nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ChaosEvidence, type CheckName, checkChaos } from './checks.ts';
import type { Attempt, Execution } from './timeline.ts';

const body = (exec: string): Buffer => Buffer.from(JSON.stringify({ exec, key: 'k' }));
const attempt = (over: Partial<Attempt>): Attempt => ({
  key: 'k',
  role: 'gateway',
  pid: 2,
  sentAt: 0,
  endedAt: 0,
  timeoutMs: 5_000,
  outcome: 'response',
  status: 200,
  body: body('e2'),
  ...over,
});

/** Pid 1 runs e1 and is killed 5 ms in; pid 2 takes the key over and runs e2; two clients get e2. */
function clean(): ChaosEvidence & { executions: Execution[]; attempts: Attempt[] } {
  return {
    keys: ['k'],
    executions: [
      { key: 'k', exec: 'e1', pid: 1, at: 10 },
      { key: 'k', exec: 'e2', pid: 2, at: 1_600 },
    ],
    attempts: [
      attempt({ role: 'adapter', pid: 1, sentAt: 5, endedAt: 16, outcome: 'error', error: 'socket closed' }),
      attempt({ sentAt: 1_590, endedAt: 1_700 }),
      attempt({ sentAt: 1_800, endedAt: 1_810, replayed: true }),
    ],
    kills: [{ role: 'adapter', pid: 1, at: 15 }],
    roles: new Map([
      [1, 'adapter'],
      [2, 'gateway'],
    ]),
    records: new Map([['k', 'completed']]),
    origin: 0,
  };
}

const checks = (evidence: ChaosEvidence): CheckName[] => checkChaos(evidence).violations.map((v) => v.check);

describe('checkChaos', () => {
  it('passes a takeover explained by a kill, and explains it', () => {
    const verdict = checkChaos(clean());
    assert.deepEqual(verdict.violations, []);
    assert.equal(verdict.extraExecutions, 1);
    assert.equal(verdict.explained, 1);
    assert.match(verdict.explanations[0]!.text, /adapter pid 1 .*SIGKILLed at t=\+0\.015 s/);
  });

  it('catches two different success bodies', () => {
    const evidence = clean();
    evidence.attempts.push(attempt({ sentAt: 1_900, endedAt: 1_950, body: body('e1') }));
    assert.ok(checks(evidence).includes('identical-success-bodies'));
  });

  it('catches a success that is not the last execution', () => {
    const evidence = clean();
    for (const a of evidence.attempts) if (a.body) a.body = body('e1');
    assert.deepEqual(checks(evidence), ['success-is-last-execution']);
  });

  it('catches an execution after a client received a success', () => {
    const evidence = clean();
    evidence.executions.push({ key: 'k', exec: 'e3', pid: 2, at: 1_750 });
    for (const a of evidence.attempts) if (a.body) a.body = body('e3');
    assert.ok(checks(evidence).includes('no-execution-after-success'));
  });

  it('catches an extra execution whose predecessor was never killed', () => {
    const evidence = { ...clean(), kills: [] };
    assert.deepEqual(checks(evidence), ['extra-execution-explained']);
  });

  it('catches an extra execution that started before the kill', () => {
    const evidence = { ...clean(), kills: [{ role: 'adapter', pid: 1, at: 1_650 }] };
    assert.deepEqual(checks(evidence), ['extra-execution-explained']);
  });

  it('catches a record left in progress', () => {
    const evidence = { ...clean(), records: new Map([['k', 'in_progress' as const]]) };
    assert.deepEqual(checks(evidence), ['nothing-in-progress']);
  });

  it('catches a key that never succeeded', () => {
    const evidence = clean();
    evidence.attempts.splice(1);
    assert.ok(checks(evidence).includes('every-key-succeeds'));
  });

  it('catches a duplicate business row, and a row of the wrong execution', () => {
    assert.deepEqual(checks({ ...clean(), rows: new Map([['k', ['e2']]]) }), []);
    assert.deepEqual(checks({ ...clean(), rows: new Map([['k', ['e1', 'e2']]]) }), ['one-business-row']);
    assert.deepEqual(checks({ ...clean(), rows: new Map([['k', ['e1']]]) }), ['success-is-last-execution']);
    assert.deepEqual(checks({ ...clean(), rows: new Map() }), ['one-business-row']);
  });

  it('reports a server that died on its own', () => {
    assert.deepEqual(checks({ ...clean(), unexpectedExits: ['the gateway process (pid 2) exited'] }), [
      'no-unexpected-exit',
    ]);
  });
});
