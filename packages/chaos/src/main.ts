// `npm run chaos`: the long form of the chaos test (docs/reliability.md). Per store, `--seconds` of
// traffic and kills, then the checks; prints the counts and every extra execution with the kill
// that explains it. Exit code 1 when any check failed.
//
//   npm run chaos -- --seconds 120 --store all
//   npm run chaos -- --seconds 30 --store postgres-tx --seed 42
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { CHAOS_DEFAULTS, formatReport, runScenario } from './chaos.ts';
import { SCENARIOS, type ScenarioName } from './scenarios.ts';

const USAGE = `Usage: npm run chaos -- [--seconds N] [--store ${SCENARIOS.join('|')}|all] [--keys N]
                        [--concurrency N] [--lease MS] [--seed N] [--quiet]

  --seconds N      traffic and kills per store [default ${CHAOS_DEFAULTS.seconds}]
  --store S        which run, or all of them, one after the other [default all]
  --keys N         at most N keys per store [default ${CHAOS_DEFAULTS.maxKeys}]
  --concurrency N  keys in flight at once [default ${CHAOS_DEFAULTS.concurrency}]
  --lease MS       lease of every server process [default ${CHAOS_DEFAULTS.leaseMs}]
  --seed N         seed of the random choices (printed with the counts)
  --quiet          print the counts only, not every explained extra execution
`;

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    store: { type: 'string', default: 'all' },
    keys: { type: 'string' },
    concurrency: { type: 'string' },
    lease: { type: 'string' },
    seed: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const stores: ScenarioName[] =
  values.store === 'all'
    ? [...SCENARIOS]
    : (SCENARIOS as readonly string[]).includes(values.store)
      ? [values.store as ScenarioName]
      : (() => {
          process.stderr.write(`unknown --store ${values.store}\n\n${USAGE}`);
          process.exit(2);
        })();
const seed = values.seed === undefined ? randomBytes(4).readUInt32BE() : Number(values.seed) >>> 0;
const options = {
  ...CHAOS_DEFAULTS,
  seconds: positive('seconds', values.seconds, CHAOS_DEFAULTS.seconds),
  maxKeys: positive('keys', values.keys, CHAOS_DEFAULTS.maxKeys),
  concurrency: positive('concurrency', values.concurrency, CHAOS_DEFAULTS.concurrency),
  leaseMs: positive('lease', values.lease, CHAOS_DEFAULTS.leaseMs),
  log: (line: string) => process.stdout.write(`${line}\n`),
};

let failed = false;
for (const [index, store] of stores.entries()) {
  let report: Awaited<ReturnType<typeof runScenario>>;
  try {
    report = await runScenario(store, { ...options, seed: (seed + index) >>> 0 });
  } catch (error) {
    // A server that would not start, a store that is unreachable: no verdict, and a loud failure.
    process.stderr.write(
      `chaos ${store}: the run could not complete: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 1;
    break;
  }
  if (!values.quiet) {
    for (const explanation of report.explanations) process.stdout.write(`  explained ${explanation.text}\n`);
  }
  process.stdout.write(`${formatReport(report)}\n`);
  for (const violation of report.violations) {
    process.stdout.write(
      `  VIOLATION ${violation.check}${violation.key ? ` ${violation.key}` : ''}: ${violation.detail}\n`,
    );
  }
  process.stdout.write('\n');
  failed ||= report.violations.length > 0;
}
if (failed) process.exitCode = 1;
