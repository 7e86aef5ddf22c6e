/**
 * The verdict of a chaos run, from its timeline alone. Per key:
 *
 * 1. every 2xx body is byte-identical (never two different successes), and it is the response of the
 *    key's last execution (and, in transactional mode, of its one business row);
 * 2. no execution starts after a client already received a success for the key;
 * 3. every execution beyond the first is explained by a kill: the process that ran the previous
 *    execution was SIGKILLed, and the kill came before the new execution started;
 * 4. once the run is over and one lease has passed, the key's record is completed, never in progress;
 * 5. the key succeeded (the driver retries until it does, or until its deadline);
 * 6. transactional mode: exactly one business row for a key that succeeded, never two.
 *
 * Plus: no server process died unless the chaos loop killed it, and the upstream could attribute
 * every request. A violation names its check, its key, and the timeline that shows it.
 */
import type { RecordState } from '@oncely/core';
import type { Attempt, Execution, Kill } from './timeline.ts';

export type CheckName =
  | 'identical-success-bodies'
  | 'success-is-last-execution'
  | 'no-execution-after-success'
  | 'extra-execution-explained'
  | 'nothing-in-progress'
  | 'every-key-succeeds'
  | 'one-business-row'
  | 'no-unexpected-exit'
  | 'upstream-attributes-every-request';

export interface Finding {
  check: CheckName;
  key?: string;
  detail: string;
}

export interface ChaosEvidence {
  keys: readonly string[];
  attempts: readonly Attempt[];
  executions: readonly Execution[];
  kills: readonly Kill[];
  /** The role of every pid started in the run. */
  roles: ReadonlyMap<number, string>;
  /** Each key's record state after the run and one lease; null when the store has none. */
  records: ReadonlyMap<string, RecordState | null>;
  /** Transactional mode: the `exec` of each business row of a key. */
  rows?: ReadonlyMap<string, readonly string[]>;
  unexpectedExits?: readonly string[];
  malformed?: readonly string[];
  /** Times in findings are shown relative to this. */
  origin: number;
}

export interface Explanation {
  key: string;
  text: string;
}

export interface Verdict {
  violations: Finding[];
  /** One line per extra execution explained by a kill. */
  explanations: Explanation[];
  executions: number;
  extraExecutions: number;
  explained: number;
}

const isSuccess = (a: Attempt): boolean => a.outcome === 'response' && a.status! >= 200 && a.status! < 300;

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}

function execOf(body: Buffer | undefined): string | undefined {
  try {
    const exec = (JSON.parse(body!.toString('utf8')) as { exec?: unknown }).exec;
    return typeof exec === 'string' ? exec : undefined;
  } catch {
    return undefined;
  }
}

export function checkChaos(evidence: ChaosEvidence): Verdict {
  const t = (at: number): string => `t=+${((at - evidence.origin) / 1000).toFixed(3)} s`;
  const who = (pid: number): string => `${evidence.roles.get(pid) ?? 'unknown'} pid ${pid}`;
  const violations: Finding[] = [];
  const explanations: Explanation[] = [];
  const attemptsByKey = groupBy(evidence.attempts, (a) => a.key);
  const executionsByKey = groupBy(evidence.executions, (e) => e.key);
  const killsByPid = new Map(evidence.kills.map((k) => [k.pid, k]));
  let extraExecutions = 0;

  for (const detail of evidence.unexpectedExits ?? [])
    violations.push({ check: 'no-unexpected-exit', detail });
  for (const detail of evidence.malformed ?? []) {
    violations.push({
      check: 'upstream-attributes-every-request',
      detail: `unattributed request: ${detail}`,
    });
  }
  const known = new Set(evidence.keys);
  for (const key of executionsByKey.keys()) {
    if (!known.has(key))
      violations.push({ check: 'every-key-succeeds', key, detail: 'executed but never sent' });
  }
  for (const [key, rows] of evidence.rows ?? []) {
    if (!known.has(key)) {
      violations.push({
        check: 'one-business-row',
        key,
        detail: `${rows.length} business rows for a key never sent`,
      });
    }
  }

  for (const key of evidence.keys) {
    const attempts = (attemptsByKey.get(key) ?? []).slice().sort((a, b) => a.endedAt - b.endedAt);
    const executions = (executionsByKey.get(key) ?? []).slice().sort((a, b) => a.at - b.at);
    const successes = attempts.filter(isSuccess);
    const timeline = (): string =>
      [
        ...executions.map((e) => ({ at: e.at, line: `execution ${e.exec} by ${who(e.pid)}` })),
        ...attempts.map((a) => ({
          at: a.endedAt,
          line: `attempt to ${a.role} pid ${a.pid} sent ${t(a.sentAt)}: ${a.outcome === 'response' ? `${a.status}${a.replayed ? ' replayed' : ''} ${a.body?.toString('utf8').slice(0, 120)}` : `${a.outcome} ${a.error ?? ''}`}`,
        })),
        ...evidence.kills
          .filter((k) => executions.some((e) => e.pid === k.pid))
          .map((k) => ({ at: k.at, line: `SIGKILL ${who(k.pid)}` })),
      ]
        .sort((a, b) => a.at - b.at)
        .map((entry) => `\n    ${t(entry.at)} ${entry.line}`)
        .join('');

    // 5. Every key succeeds.
    if (successes.length === 0) {
      violations.push({
        check: 'every-key-succeeds',
        key,
        detail: `no success within the deadline after ${attempts.length} attempts:${timeline()}`,
      });
    }

    // 1. Byte-identical success bodies, and the body of the execution that counted.
    const first = successes[0];
    for (const other of successes.slice(1)) {
      if (!other.body!.equals(first!.body!)) {
        violations.push({
          check: 'identical-success-bodies',
          key,
          detail: `two different success bodies: ${first!.body!.toString('utf8')} (${first!.role} pid ${first!.pid}, ${t(first!.endedAt)}) and ${other.body!.toString('utf8')} (${other.role} pid ${other.pid}, ${t(other.endedAt)}):${timeline()}`,
        });
        break;
      }
    }
    if (first) {
      const exec = execOf(first.body);
      const last = executions.at(-1);
      if (exec === undefined || last === undefined || exec !== last.exec) {
        violations.push({
          check: 'success-is-last-execution',
          key,
          detail: `the success body names execution ${exec ?? '(none)'}, the key's last execution is ${last?.exec ?? '(none)'}:${timeline()}`,
        });
      }
      const rows = evidence.rows?.get(key);
      if (rows !== undefined && rows.length === 1 && rows[0] !== exec) {
        violations.push({
          check: 'success-is-last-execution',
          key,
          detail: `the success body names execution ${exec ?? '(none)'}, the business row was written by ${rows[0]}:${timeline()}`,
        });
      }
    }

    // 2. No execution after a client received a success.
    if (first) {
      const late = executions.filter((e) => e.at > first.endedAt);
      if (late.length > 0) {
        violations.push({
          check: 'no-execution-after-success',
          key,
          detail: `${late.length} execution(s) after a client received a success at ${t(first.endedAt)}:${timeline()}`,
        });
      }
    }

    // 3. Every extra execution is explained by a kill of the previous one's process.
    for (let i = 1; i < executions.length; i++) {
      extraExecutions++;
      const previous = executions[i - 1]!;
      const current = executions[i]!;
      const kill = killsByPid.get(previous.pid);
      if (kill === undefined || kill.at >= current.at) {
        violations.push({
          check: 'extra-execution-explained',
          key,
          detail: `execution #${i + 1} (${who(current.pid)}, ${t(current.at)}) is not explained by a kill: the previous execution's process, ${who(previous.pid)}, ${kill ? `was killed only at ${t(kill.at)}` : 'was never killed'}:${timeline()}`,
        });
        continue;
      }
      explanations.push({
        key,
        text: `${key}: execution #${i + 1} by ${who(current.pid)} at ${t(current.at)} — #${i} by ${who(previous.pid)} started at ${t(previous.at)}, that process was SIGKILLed at ${t(kill.at)} (${Math.round(kill.at - previous.at)} ms into it), the key was taken over ${Math.round(current.at - kill.at)} ms after the kill`,
      });
    }

    // 4. Nothing left in progress.
    const state = evidence.records.get(key);
    if (state === 'in_progress' || (first && state !== 'completed')) {
      violations.push({
        check: 'nothing-in-progress',
        key,
        detail: `after the run and one lease the record is ${state ?? 'missing'}${first ? ', though a client received a success' : ''}:${timeline()}`,
      });
    }

    // 6. One business row per key.
    const rows = evidence.rows?.get(key);
    const count = rows?.length ?? 0;
    if (evidence.rows && (count > 1 || (first && count !== 1))) {
      violations.push({
        check: 'one-business-row',
        key,
        detail: `${count} business rows (${(rows ?? []).join(', ')}) for a key that ${first ? 'succeeded' : 'never succeeded'}:${timeline()}`,
      });
    }
  }

  return {
    violations,
    explanations,
    executions: evidence.executions.length,
    extraExecutions,
    explained: explanations.length,
  };
}
