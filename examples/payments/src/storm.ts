// `npm run demo:storm`: a retry storm against the payments demo. The demo runs as its own process
// behind a fault-injecting proxy; many workers pay through `@oncely/client`, one key per logical
// payment; afterwards the demo's own SQLite file is audited for double charges.
//
//   npm run demo:storm -- --payments 1000 --workers 50
//   npm run demo:storm -- --no-idempotency      (or ONCELY_STORM_IDEMPOTENCY=off): the same run on a naive API
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createClient, deriveKey, isOncelyClientError } from '@oncely/client';
import { startDemo } from './demo-process.ts';
import { type FaultProxyStats, type FaultRates, startFaultProxy } from './fault-proxy.ts';
import { openPaymentsDb } from './payments-db.ts';

export interface StormOptions {
  /** Logical payments to make. */
  payments: number;
  /** Payments in flight at once. */
  workers: number;
  /** False runs the demo with `ONCELY_DEMO_IDEMPOTENCY=off`: the control run. */
  idempotency: boolean;
  /** Seed of the proxy's fault sequence. */
  seed: number;
  rates: FaultRates;
  /** The whole storm stops (and reports what did not finish) after this long. */
  timeLimitMs: number;
  /** Where the demo keeps its files; a fresh temporary directory, removed afterwards, when absent. */
  dir?: string | undefined;
}

export const STORM_DEFAULTS = Object.freeze({
  payments: 1000,
  workers: 50,
  idempotency: true,
  rates: Object.freeze({ reset: 0.1, dropAfterResponse: 0.15, delay: 0.1 }),
  timeLimitMs: 120_000,
});

export interface StormReport {
  options: StormOptions;
  durationMs: number;
  client: {
    /** Payments the client saw answered with 201. */
    completed: number;
    /** Payments that ended otherwise (final error status, no response, or the time limit). */
    failed: number;
    failures: Record<string, number>;
    attempts: number;
    retries: number;
    /** Answers that were replays of an earlier execution (`Idempotent-Replayed: true`). */
    replays: number;
  };
  proxy: FaultProxyStats;
  audit: {
    requested: number;
    /** Rows in `payments` for this run. */
    recorded: number;
    /** Requested payments with exactly one row in `payments`. */
    recordedOnce: number;
    /** Rows in `provider_charges` for this run. */
    charges: number;
    /** Requested payments with at least one charge. */
    chargedPayments: number;
    /** Requested payments charged more than once. */
    doubleCharged: number;
    /** Charges beyond one per charged payment. */
    extraCharges: number;
  };
}

/** mulberry32: a tiny seeded generator, so a storm's fault sequence can be replayed with --seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Run one storm and audit it. */
export async function runStorm(options: StormOptions): Promise<StormReport> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'oncely-storm-'));
  // Customers carry the run id: the audit counts this run only, even in a reused --dir.
  const runId = randomBytes(4).toString('hex');
  const customerPrefix = `cus_${runId}_`;
  const started = performance.now();
  const demo = await startDemo({
    ONCELY_DEMO_DIR: dir,
    ...(options.idempotency ? {} : { ONCELY_DEMO_IDEMPOTENCY: 'off' }),
  });
  const demoExited = new Promise<void>((resolve) => demo.child.once('exit', () => resolve()));
  const proxy = await startFaultProxy({
    upstream: demo.url,
    rates: options.rates,
    random: seeded(options.seed),
  });
  const stop = AbortSignal.timeout(options.timeLimitMs);
  const counts = { completed: 0, failed: 0, attempts: 0, retries: 0, replays: 0 };
  const client = createClient({
    // At a 25 % chance of losing an attempt, 11 attempts all fail for about one payment in 4 million.
    retries: 10,
    baseDelayMs: 25,
    maxDelayMs: 1_000,
    timeoutMs: 10_000,
    deadlineMs: 60_000,
    // Counted here, not from the results, so attempts of calls cut off by the time limit count too.
    fetch: (input, init) => {
      counts.attempts++;
      return fetch(input, init);
    },
    onRetry: () => void counts.retries++,
  });
  const failures: Record<string, number> = {};
  const fail = (why: string) => {
    counts.failed++;
    failures[why] = (failures[why] ?? 0) + 1;
  };

  let next = 0;
  const worker = async () => {
    while (next < options.payments && !stop.aborted) {
      const i = next++;
      try {
        const result = await client.post(
          `${proxy.url}/payments`,
          { amount: 100 + (i % 900), currency: 'eur', customer: `${customerPrefix}${i}` },
          {
            key: await deriveKey('storm', runId, i),
            headers: { authorization: 'Bearer sk_storm' },
            signal: stop,
          },
        );
        if (result.replayed) counts.replays++;
        if (result.status === 201) counts.completed++;
        else fail(`HTTP ${result.status}${result.problem?.code ? ` ${result.problem.code}` : ''}`);
      } catch (error) {
        if (isOncelyClientError(error)) fail(error.code);
        else fail(stop.aborted ? 'time limit' : String(error));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(options.workers, options.payments) }, worker));
  } finally {
    await proxy.close();
    demo.child.kill('SIGTERM');
    await demoExited;
  }
  // Payments never started before the time limit count as failed too.
  for (let i = next; i < options.payments; i++) fail('time limit');
  const durationMs = performance.now() - started;

  const db = openPaymentsDb(join(dir, 'payments-demo.db'));
  const ofRun = 'substr(customer, 1, ?) = ?';
  const one = (sql: string) =>
    Number((db.prepare(sql).get(customerPrefix.length, customerPrefix) as { n: number | bigint }).n);
  const audit = {
    requested: options.payments,
    recorded: one(`SELECT COUNT(*) AS n FROM payments WHERE ${ofRun}`),
    recordedOnce: one(
      `SELECT COUNT(*) AS n FROM (SELECT customer FROM payments WHERE ${ofRun} GROUP BY customer HAVING COUNT(*) = 1)`,
    ),
    charges: one(`SELECT COUNT(*) AS n FROM provider_charges WHERE ${ofRun}`),
    chargedPayments: one(`SELECT COUNT(DISTINCT customer) AS n FROM provider_charges WHERE ${ofRun}`),
    doubleCharged: one(
      `SELECT COUNT(*) AS n FROM (SELECT customer FROM provider_charges WHERE ${ofRun} GROUP BY customer HAVING COUNT(*) > 1)`,
    ),
    extraCharges: 0,
  };
  audit.extraCharges = audit.charges - audit.chargedPayments;
  db.close();
  if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });

  return { options, durationMs, client: { ...counts, failures }, proxy: { ...proxy.stats }, audit };
}

/** True when the run shows what idempotency promises: every payment done, recorded once, charged once. */
export function exactlyOnce(report: StormReport): boolean {
  const { client, audit } = report;
  return (
    client.completed === audit.requested &&
    audit.recorded === audit.requested &&
    audit.recordedOnce === audit.requested &&
    audit.chargedPayments === audit.requested &&
    audit.doubleCharged === 0 &&
    audit.extraCharges === 0
  );
}

const pct = (p: number) => `${Math.round(p * 100)} %`;

/** The report as the demo prints it. */
export function formatReport(report: StormReport): string {
  const { options: o, client: c, proxy: p, audit: a } = report;
  const failures = Object.entries(c.failures)
    .map(([why, n]) => `${n} × ${why}`)
    .join(', ');
  return [
    `Oncely retry storm: ${o.payments} payments, ${o.workers} workers, idempotency ${o.idempotency ? 'ON' : 'OFF'}`,
    `  faults: ${pct(o.rates.reset)} reset before forwarding, ${pct(o.rates.dropAfterResponse)} dropped after the server answered, ${pct(o.rates.delay)} delayed (seed ${o.seed})`,
    '',
    `  client     attempts ${c.attempts}, retries ${c.retries}, replays ${c.replays} (final answers that were replays); completed ${c.completed}, failed ${c.failed}${failures ? ` (${failures})` : ''}`,
    `  proxy      requests ${p.requests}: reset ${p.reset}, dropped after answer ${p.dropAfterResponse}, delayed ${p.delayed}, answered ${p.answered}`,
    `  audit      payments requested ${a.requested}, recorded ${a.recorded} (${a.recordedOnce} exactly once)`,
    `             provider charges ${a.charges} for ${a.chargedPayments} payments`,
    `             double charges ${a.doubleCharged} payments charged more than once, ${a.extraCharges} extra charges`,
    `  duration   ${(report.durationMs / 1000).toFixed(1)} s (demo start-up included)`,
    '',
    o.idempotency
      ? exactlyOnce(report)
        ? '  => every payment completed, recorded once and charged once.'
        : c.failures['time limit']
          ? '  => the time limit ended the storm before every payment completed.'
          : '  => NOT exactly once: see the numbers above.'
      : `  => without idempotency the retries charged ${a.extraCharges} times too often.`,
  ].join('\n');
}

function positiveInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      payments: { type: 'string' },
      workers: { type: 'string' },
      'no-idempotency': { type: 'boolean', default: false },
      seed: { type: 'string' },
      'time-limit': { type: 'string' },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(`usage: npm run demo:storm -- [options]

Payments through a fault-injecting proxy to the demo, then an audit of the demo's own tables.

  --payments N        logical payments to make (default ${STORM_DEFAULTS.payments})
  --workers N         payments in flight at once (default ${STORM_DEFAULTS.workers})
  --no-idempotency    the control run: the demo without Oncely (its double charges are expected)
  --seed N            seed of the proxy's fault sequence (default: random, printed)
  --time-limit S      give up after S seconds (default ${STORM_DEFAULTS.timeLimitMs / 1000})
  --dir PATH          where the demo keeps its files (default: a temp dir, removed afterwards)
  -h, --help          this text

Exit code 1 when a run with idempotency is not exactly once.`);
    process.exit(0);
  }
  const idempotency = !values['no-idempotency'] && process.env.ONCELY_STORM_IDEMPOTENCY !== 'off';
  const report = await runStorm({
    payments: positiveInteger('payments', values.payments, STORM_DEFAULTS.payments),
    workers: positiveInteger('workers', values.workers, STORM_DEFAULTS.workers),
    idempotency,
    seed: values.seed === undefined ? randomBytes(4).readUInt32BE() : Number(values.seed) >>> 0,
    rates: STORM_DEFAULTS.rates,
    timeLimitMs:
      positiveInteger('time-limit', values['time-limit'], STORM_DEFAULTS.timeLimitMs / 1000) * 1000,
    dir: values.dir,
  });
  console.log(formatReport(report));
  // With idempotency on, anything but exactly-once is a failure; the control run is expected to fail.
  process.exitCode = idempotency && !exactlyOnce(report) ? 1 : 0;
}
