/**
 * `npm run bench [-- --quick]`: every case in turn on this machine, loopback only, bounded in time;
 * writes bench/results/<date>.json and (full runs) the tables and chart of docs/benchmarks.md.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { allCases, type Case, quickCases } from './cases.ts';
import { barChart } from './chart.ts';
import { CHECK_DUPLICATES, CHECK_KEYS, CHECK_WORK_MS, checkCorrectness } from './correctness.ts';
import { complete, load } from './load.ts';
import { measureMemory } from './memory.ts';
import { cpuSeconds } from './processes.ts';
import {
  type CorrectnessRow,
  correctnessTable,
  type MemoryRow,
  memoryTable,
  replaceSection,
  speedTable,
} from './report.ts';
import { checkServices, type Services } from './state.ts';
import { orderFor, type RunSample, summarise } from './stats.ts';
import { withTarget } from './target.ts';

const ROOT = new URL('../../', import.meta.url);
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    repeats: { type: 'string' },
    duration: { type: 'string' },
    'skip-memory': { type: 'boolean', default: false },
    'skip-correctness': { type: 'boolean', default: false },
    'write-docs': { type: 'boolean' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(`usage: npm run bench -- [options]

Every case in turn on this machine (loopback only, bounded in time): Oncely against the bare
frameworks and peer libraries, side by side in one run, with a correctness check per case.

  --quick              one short repeat per case (about 2.5 min), results not written to docs
  --only A,B           only these cases (the bare baselines always run)
  --repeats N          repeats per case (default 3, quick 1)
  --duration S         seconds of load per repeat (default 5, quick 1.2)
  --skip-memory        skip the memory measurements
  --skip-correctness   skip the concurrent-duplicates check
  --write-docs         write docs/benchmarks.md (default: on for full runs, off with --quick)
  -h, --help           this text

Writes bench/results/<date>.json; a full run also updates docs/benchmarks.md. For one case under
the profiler: npm run bench:profile -- --help
`);
  process.exit(0);
}

const quick = args.quick ?? false;
const plan = {
  repeats: Number(args.repeats ?? (quick ? 1 : 3)),
  durationS: Number(args.duration ?? (quick ? 1.2 : 5)),
  warmupS: quick ? 0.4 : 1,
  connections: 50,
  replayPool: 200,
  memory: quick
    ? { distinctKeys: 10_000, largeReplays: 1_000, connections: 50 }
    : { distinctKeys: 100_000, largeReplays: 10_000, connections: 50 },
};
const services: Services = {
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  databaseUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
};
const log = (line: string) => process.stderr.write(`${line}\n`);

let cases = quick ? quickCases() : allCases();
if (args.only) {
  const only = args.only.split(',');
  // The baselines always run: every ratio needs the bare case of the same repeat.
  cases = cases.filter((c) => c.group === 'baseline' || only.some((part) => c.id.includes(part)));
}

try {
  await checkServices(services);
} catch (error) {
  log(`bench: ${(error as Error).message}`);
  process.exit(1);
}

const started = Date.now();
const tmpDir = await mkdtemp(join(os.tmpdir(), 'oncely-bench-'));
const targetOptions = { ...services, tmpDir };
const loadBefore = os.loadavg();

const correctness: Array<CorrectnessRow & { caseId: string }> = [];

/**
 * One measured run of one case: (first repeat, once per server configuration) the correctness
 * check, then warm up, (for replays) complete the key pool, measure. The check shares the server
 * process with the measurement to save a start-up; its 20 keys are nothing beside the load's.
 */
async function measure(c: Case, repeat: number): Promise<RunSample> {
  return withTarget(c, targetOptions, async (target) => {
    if (repeat === 0 && c.path !== 'replay' && !args['skip-correctness']) {
      try {
        const result = await checkCorrectness(target);
        correctness.push({ caseId: c.id, label: c.label, result });
        log(
          `  correctness: side effects per key ${Math.min(...result.effectsPerKey)}–${Math.max(...result.effectsPerKey)}, statuses ${JSON.stringify(result.statuses)}`,
        );
      } catch (error) {
        correctness.push({ caseId: c.id, label: c.label, result: { error: (error as Error).message } });
        log(`  correctness: failed: ${(error as Error).message}`);
      }
    }
    let n = 0;
    let nextKey = () => `k-${target.tag}-${n++}`;
    if (c.path === 'replay') {
      const pool = Array.from({ length: plan.replayPool }, (_, i) => `k-${target.tag}-p${i}`);
      const statuses = await complete(target.url, pool);
      const failed = statuses.filter((s) => s !== 201).length;
      if (failed > 0) log(`  ${c.id}: ${failed} of the replay pool's first requests were not 201`);
      let i = 0;
      nextKey = () => pool[i++ % pool.length] as string;
    }
    await load({ url: target.url, connections: plan.connections, durationS: plan.warmupS, nextKey });
    const before = await target.handler.effects([]);
    const cpuBefore = await serverCpu(target.pids);
    const result = await load({
      url: target.url,
      connections: plan.connections,
      durationS: plan.durationS,
      nextKey,
    });
    const cpuAfter = await serverCpu(target.pids);
    const after = await target.handler.effects([]);
    const cpuUsPerRequest =
      result.requests > 0 ? ((cpuAfter - cpuBefore) * 1e6) / result.requests : Number.NaN;
    return {
      caseId: c.id,
      repeat,
      ...result,
      cpuUsPerRequest,
      executions: after.executions - before.executions,
    };
  });
}

/**
 * autocannon runs in this process: its first seconds run cold (JIT), which would handicap whichever
 * case comes first. Warm it on a throwaway bare server before anything is measured.
 */
async function warmParent(): Promise<void> {
  const bare = cases.find((c) => c.group === 'baseline');
  if (!bare) return;
  await withTarget(bare, targetOptions, async (target) => {
    let n = 0;
    await load({
      url: target.url,
      connections: plan.connections,
      durationS: plan.warmupS * 3,
      nextKey: () => `k-${target.tag}-${n++}`,
    });
  });
}
await warmParent();

/** CPU seconds of all of a case's server processes together. */
async function serverCpu(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await cpuSeconds(pid);
  return total;
}

const samples: RunSample[] = [];
const notRun = new Map<string, string>();
// Progress: case i of n, and the time left at the pace so far.
const total = plan.repeats * cases.length;
const measureStarted = Date.now();
let done = 0;
const progress = (): string => {
  done++;
  const left = ((Date.now() - measureStarted) / done) * (total - done);
  return `case ${done} of ${total}, about ${Math.ceil(left / 1000)} s left`;
};
for (let repeat = 0; repeat < plan.repeats; repeat++) {
  for (const c of orderFor(cases, repeat)) {
    if (notRun.has(c.id)) {
      done++;
      continue;
    }
    const t0 = Date.now();
    try {
      const sample = await measure(c, repeat);
      samples.push(sample);
      log(
        `[${repeat + 1}/${plan.repeats}] ${c.id.padEnd(42)} ${Math.round(sample.rps).toString().padStart(6)} req/s  p50 ${sample.p50} ms  p99 ${sample.p99} ms  errors ${sample.errors}  non-2xx ${sample.non2xx}  (${((Date.now() - t0) / 1000).toFixed(1)} s; ${progress()})`,
      );
    } catch (error) {
      notRun.set(c.id, (error as Error).message);
      log(`[${repeat + 1}/${plan.repeats}] ${c.id}: NOT RUN: ${(error as Error).message} (${progress()})`);
    }
  }
}
const byId = new Map(cases.map((c) => [c.id, c]));
const summaries = summarise(samples, (id) => byId.get(id)?.baseline ?? id);
// In case order, whatever order the repeat ran them in.
correctness.sort(
  (a, b) => cases.findIndex((c) => c.id === a.caseId) - cases.findIndex((c) => c.id === b.caseId),
);

let memory: MemoryRow[] = [];
if (!args['skip-memory']) {
  memory = await measureMemory(plan.memory, targetOptions);
  for (const row of memory)
    log(`memory ${row.label}: ${row.rssBeforeMiB.toFixed(0)} → ${row.rssAfterMiB.toFixed(0)} MiB`);
}
await rm(tmpDir, { recursive: true, force: true });

const elapsedS = (Date.now() - started) / 1000;
const versions = await readVersions();
const machine = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
  os: `${os.type()} ${os.release()}`,
  node: process.version,
  loadAverageBefore: loadBefore.map((x) => Number(x.toFixed(2))),
  loadAverageAfter: os.loadavg().map((x) => Number(x.toFixed(2))),
};
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const date = new Date().toISOString().slice(0, 10);
const results = {
  date: new Date().toISOString(),
  mode: quick ? 'quick' : 'full',
  command,
  elapsedSeconds: Math.round(elapsedS),
  plan,
  correctnessPlan: { keys: CHECK_KEYS, duplicates: CHECK_DUPLICATES, workMs: CHECK_WORK_MS },
  machine,
  versions,
  cases,
  notRun: Object.fromEntries(notRun),
  samples,
  summaries,
  correctness,
  memory,
};
const resultsDir = new URL('bench/results/', ROOT);
await mkdir(resultsDir, { recursive: true });
const resultsFile = new URL(`${date}${quick ? '-quick' : ''}.json`, resultsDir);
await writeFile(resultsFile, `${JSON.stringify(results, null, 2)}\n`);

const table = speedTable(cases, summaries);
const notRunNote = [...notRun].map(([id, why]) => `- \`${id}\` not run: ${why}`).join('\n');
const correctnessMd = correctnessTable(correctness);
const memoryMd = memoryTable(memory);
const chart = barChart(
  `req/s, median of ${plan.repeats} × ${plan.durationS} s, ${plan.connections} connections (${date}, ${machine.cpus} cores)`,
  cases.map((c) => ({
    label: `${c.label}${c.path === 'bare' ? '' : c.path === 'first' ? ', first' : ', replay'}`,
    value: summaries.find((s) => s.caseId === c.id)?.rps ?? Number.NaN,
    group: c.group,
  })),
);
const meta = [
  `- Date: ${results.date}, mode: ${results.mode}, took ${Math.round(elapsedS)} s`,
  `- Command: \`${command}\``,
  `- Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}, Node ${machine.node}; load average before ${machine.loadAverageBefore.join(' / ')}, after ${machine.loadAverageAfter.join(' / ')}`,
  `- Load: autocannon, ${plan.connections} connections, ${plan.warmupS} s warm-up then ${plan.durationS} s measured, ${plan.repeats} repeats in alternating order; replay cycles over ${plan.replayPool} completed keys`,
  `- Versions: ${Object.entries(versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ')}`,
].join('\n');

process.stdout.write(
  `\n${table}\n${notRunNote ? `\n${notRunNote}\n` : ''}\n${correctnessMd}\n\n${memoryMd}\n\n${meta}\n`,
);

const writeDocs = args['write-docs'] ?? !quick;
if (writeDocs) {
  const docFile = new URL('docs/benchmarks.md', ROOT);
  let doc = await readFile(docFile, 'utf8');
  doc = replaceSection(doc, 'table', `${table}${notRunNote ? `\n\n${notRunNote}` : ''}`);
  doc = replaceSection(doc, 'correctness', correctnessMd);
  doc = replaceSection(doc, 'memory', memoryMd);
  doc = replaceSection(doc, 'meta', meta);
  await writeFile(docFile, doc);
  await writeFile(new URL('docs/benchmarks.svg', ROOT), chart);
} else {
  await writeFile(new URL(`${date}-quick.svg`, resultsDir), chart);
}
log(
  `\nbench: ${Math.round(elapsedS)} s; results in ${resultsFile.pathname}${writeDocs ? ', docs/benchmarks.md and docs/benchmarks.svg updated' : ''}`,
);

async function readVersions(): Promise<Record<string, string>> {
  const names = [
    'autocannon',
    'express',
    'fastify',
    'hono',
    '@hono/node-server',
    'ioredis',
    'pg',
    '@redis/client',
    'express-idempotency',
    'express-idempotency-redis-adapter',
    '@node-idempotency/core',
    '@node-idempotency/storage-adapter-redis',
    '@aws-lambda-powertools/idempotency',
    '@oncely/core',
  ];
  const versions: Record<string, string> = {};
  for (const name of names) {
    try {
      const pkg = JSON.parse(await readFile(new URL(`node_modules/${name}/package.json`, ROOT), 'utf8')) as {
        version: string;
      };
      versions[name] = pkg.version;
    } catch {
      versions[name] = 'not found';
    }
  }
  return versions;
}
