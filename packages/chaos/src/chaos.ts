/**
 * One chaos run per store: start the two server processes, drive duplicate and timed-out traffic at
 * both while a loop SIGKILLs one of them at random intervals and restarts it, wait one lease, read
 * every key's record, and judge the timeline (checks.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { checkChaos, type Explanation, type Finding } from './checks.ts';
import { drive } from './driver.ts';
import { between, pick, type Random, seeded } from './random.ts';
import { openScenario, type ScenarioName } from './scenarios.ts';
import { type ServerSlot, serverSlot } from './server-process.ts';
import { type Attempt, type Execution, type Kill, now } from './timeline.ts';
import { startCountingUpstream } from './upstream.ts';

export interface ChaosOptions {
  /** Seconds of traffic and kills per store; keys in flight then finish without kills. */
  seconds: number;
  /** At most this many keys per store. */
  maxKeys: number;
  /** Keys in flight at once. */
  concurrency: number;
  /** The lease of every server process: a killed process's keys are free again after it. */
  leaseMs: number;
  /** The chaos loop waits a random time from this range before each kill. */
  killEveryMs: [number, number];
  /** The counting upstream (or the transactional work) takes a random time from this range. */
  workDelayMs: [number, number];
  /** A key that has not succeeded this long after its first attempt is a finding. */
  keyDeadlineMs: number;
  seed: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export const CHAOS_DEFAULTS = Object.freeze({
  seconds: 60,
  maxKeys: 100_000,
  concurrency: 8,
  leaseMs: 1_500,
  killEveryMs: [1_000, 3_000] as [number, number],
  workDelayMs: [20, 300] as [number, number],
  keyDeadlineMs: 30_000,
});

export interface ChaosReport {
  store: ScenarioName;
  seed: number;
  durationMs: number;
  keys: number;
  succeeded: number;
  requests: number;
  /** Attempts by outcome: a status code, `timeout` (the client gave up) or `error` (no response). */
  outcomes: Record<string, number>;
  replays: number;
  kills: number;
  executions: number;
  extraExecutions: number;
  explained: number;
  /** Transactional mode: business rows written, and keys with more than one. */
  rows?: { total: number; duplicateKeys: number };
  violations: Finding[];
  explanations: Explanation[];
}

/**
 * SIGKILL a server at random intervals and restart it, until `until`. Half the kills hit a random
 * server, half the one with the most requests in flight, so most kills land mid-request.
 */
async function killLoop(
  slots: readonly ServerSlot[],
  random: Random,
  options: ChaosOptions,
  until: number,
  inFlight: ReadonlyMap<number, number>,
  kills: Kill[],
  signal: AbortSignal,
): Promise<void> {
  const busy = (slot: ServerSlot): number => inFlight.get(slot.current()?.pid ?? -1) ?? 0;
  for (;;) {
    const wait = between(random, options.killEveryMs[0], options.killEveryMs[1]);
    if (now() + wait >= until || signal.aborted) return;
    await sleep(wait);
    if (signal.aborted) return;
    const victim = random() < 0.5 ? pick(random, slots) : slots.reduce((a, b) => (busy(b) > busy(a) ? b : a));
    kills.push(await victim.killAndRestart());
  }
}

const WORK_LINE = /^work (\S+) (\S+) (\S+)$/;

export async function runScenario(store: ScenarioName, options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? ((): void => {});
  const random = seeded(options.seed);
  const started = now();
  const scenario = await openScenario(store, { leaseMs: options.leaseMs, workDelayMs: options.workDelayMs });
  try {
    const upstream = scenario.transactional
      ? undefined
      : await startCountingUpstream({ random, delayMs: options.workDelayMs });
    const executions: Execution[] = upstream?.executions ?? [];
    const attempts: Attempt[] = [];
    const kills: Kill[] = [];
    const inFlight = new Map<number, number>();
    const roles = new Map<number, string>();
    const unexpectedExits: string[] = [];
    const slots = scenario.commands(upstream?.url).map((command) =>
      serverSlot(command, {
        onStart: (server) => {
          if (roles.has(server.pid)) unexpectedExits.push(`pid ${server.pid} was reused within the run`);
          roles.set(server.pid, server.role);
        },
        onUnexpectedExit: (detail) => unexpectedExits.push(detail),
        onLine: (line, server) => {
          const work = scenario.transactional ? WORK_LINE.exec(line) : null;
          if (work) executions.push({ key: work[1]!, exec: work[2]!, pid: server.pid, at: Number(work[3]) });
        },
      }),
    );
    let keys: string[] = [];
    let records: Awaited<ReturnType<typeof scenario.records>>;
    let rows: Map<string, string[]> | undefined;
    const failed = new AbortController();
    try {
      await Promise.all(slots.map((slot) => slot.start()));
      log(
        `${store}: ${slots.map((s) => `${s.role} pid ${s.current()?.pid}`).join(', ')}; traffic for ${options.seconds} s`,
      );
      const until = now() + options.seconds * 1000;
      const chaos = killLoop(slots, random, options, until, inFlight, kills, failed.signal).catch(
        (error: unknown) => {
          failed.abort(error);
          throw error;
        },
      );
      [keys] = await Promise.all([
        drive({
          slots,
          random,
          keyPrefix: `chaos-${options.seed.toString(16)}`,
          maxKeys: options.maxKeys,
          concurrency: options.concurrency,
          until,
          keyDeadlineMs: options.keyDeadlineMs,
          attempts,
          inFlight,
          signal: failed.signal,
        }),
        chaos,
      ]);
      // Every owner that was killed has lost its lease by now; nothing may still be in progress.
      await sleep(options.leaseMs + 250);
      records = await scenario.records(keys);
      rows = await scenario.rows?.();
    } finally {
      failed.abort();
      await Promise.all(slots.map((slot) => slot.stop()));
      await upstream?.close();
    }
    const verdict = checkChaos({
      keys,
      attempts,
      executions,
      kills,
      roles,
      records,
      ...(rows ? { rows } : {}),
      unexpectedExits,
      malformed: upstream?.malformed ?? [],
      origin: started,
    });
    const outcomes: Record<string, number> = {};
    for (const a of attempts) {
      const outcome = a.outcome === 'response' ? String(a.status) : a.outcome;
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
    const successKeys = new Set(
      attempts.filter((a) => a.status !== undefined && a.status >= 200 && a.status < 300).map((a) => a.key),
    );
    return {
      store,
      seed: options.seed,
      durationMs: now() - started,
      keys: keys.length,
      succeeded: successKeys.size,
      requests: attempts.length,
      outcomes,
      replays: attempts.filter((a) => a.replayed).length,
      kills: kills.length,
      executions: verdict.executions,
      extraExecutions: verdict.extraExecutions,
      explained: verdict.explained,
      ...(rows
        ? {
            rows: {
              total: [...rows.values()].reduce((n, list) => n + list.length, 0),
              duplicateKeys: [...rows.values()].filter((list) => list.length > 1).length,
            },
          }
        : {}),
      violations: verdict.violations,
      explanations: verdict.explanations,
    };
  } finally {
    await scenario.cleanup();
  }
}

/** The counts of a run, one block per store. */
export function formatReport(report: ChaosReport): string {
  const count = (check: Finding['check']): number =>
    report.violations.filter((v) => v.check === check).length;
  const outcomes = Object.entries(report.outcomes)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([outcome, n]) => `${outcome} ${n}`)
    .join(', ');
  const lines = [
    `chaos ${report.store} (seed ${report.seed}, ${(report.durationMs / 1000).toFixed(1)} s)`,
    `  keys        ${report.keys}, succeeded ${report.succeeded}`,
    `  requests    ${report.requests} (${outcomes}); replays ${report.replays}`,
    `  kills       ${report.kills} SIGKILLs`,
    `  executions  ${report.executions}: ${report.extraExecutions} extra, ${report.explained} explained by a kill`,
  ];
  if (report.rows) {
    lines.push(
      `  rows        ${report.rows.total} business rows, ${report.rows.duplicateKeys} keys with more than one`,
    );
  }
  lines.push(
    `  checks      different success bodies ${count('identical-success-bodies')}, executions after a success ${count('no-execution-after-success')}, unexplained extra executions ${count('extra-execution-explained')}, records left in progress ${count('nothing-in-progress')}, keys without success ${count('every-key-succeeds')}; violations ${report.violations.length}`,
  );
  return lines.join('\n');
}
