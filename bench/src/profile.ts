/**
 * `npm run bench:profile -- --framework fastify --store memory --mode replay`: one server process
 * under `node --cpu-prof`, loaded for a few seconds, then the functions with the most self time.
 * The loop the issue asks for: profile, fix the biggest line, measure again.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { load, PAYMENT_BODY } from './load.ts';
import { cpuSeconds } from './processes.ts';
import type { Framework, ServerSpec, StoreKind, Variant } from './server/spec.ts';

const { values: args } = parseArgs({
  options: {
    framework: { type: 'string', default: 'fastify' },
    variant: { type: 'string', default: 'oncely' },
    store: { type: 'string', default: 'memory' },
    mode: { type: 'string', default: 'replay' },
    seconds: { type: 'string', default: '5' },
    top: { type: 'string', default: '25' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    'usage: npm run bench:profile -- [--framework express|fastify|hono] [--variant bare|oncely] [--store memory|sqlite|redis|postgres] [--mode replay|first] [--seconds 5] [--top 25]\n',
  );
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'oncely-profile-'));
const spec: ServerSpec = {
  framework: args.framework as Framework,
  variant: args.variant as Variant,
  store: args.store as StoreKind,
  tag: `profile${process.pid}`,
  sqlitePath: join(dir, 'bench.db'),
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  databaseUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
};
const child = fork(new URL('./server/main.ts', import.meta.url), [JSON.stringify(spec)], {
  execArgv: ['--conditions=oncely:source', '--cpu-prof', `--cpu-prof-dir=${dir}`],
});
const port = await new Promise<number>((resolve) => {
  child.on('message', (message: { type: string; port: number }) => {
    if (message.type === 'ready') resolve(message.port);
  });
});
const url = `http://127.0.0.1:${port}`;
const pool = Array.from({ length: 200 }, (_, i) => `profile-${process.pid}-${i}`);
if (args.mode === 'replay') {
  // Fill the pool once, so every profiled request is a replay.
  for (const key of pool) {
    await fetch(`${url}/payments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: PAYMENT_BODY,
    });
  }
}
let n = 0;
const before = await cpuSeconds(child.pid!);
const result = await load({
  url,
  connections: 50,
  durationS: Number(args.seconds),
  nextKey:
    args.mode === 'replay' ? () => pool[n++ % pool.length]! : () => `profile-${process.pid}-new-${n++}`,
});
const cpu = (await cpuSeconds(child.pid!)) - before;
process.stdout.write(
  `${spec.framework}/${spec.variant}/${spec.store} ${args.mode}: ${Math.round(result.rps)} req/s, ${((cpu * 1e6) / result.requests).toFixed(0)} µs server CPU per request, ${result.non2xx} non-2xx\n`,
);
child.kill('SIGTERM');
await new Promise((resolve) => child.once('exit', resolve));

const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
if (!file) throw new Error('no profile written');
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map<string, number>();
profile.samples.forEach((id, i) => {
  const frame = byId.get(id)!.callFrame;
  const name = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
  self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(args.top))) {
  process.stdout.write(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${name}\n`);
}
process.stdout.write(`profile: ${join(dir, file)}\n`);
