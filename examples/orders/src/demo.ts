/**
 * The order demo, as a function: set up the run's tables and broker names, spawn the orchestrator
 * and the six participants as child processes, start `orders` sagas, optionally inject faults (kill
 * processes at random with SIGKILL and restart them, cut the broker connections through the fault
 * proxy), wait until everything settled, and audit from the databases.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { faultProxy } from '@oncely/test-stores';
import pg from 'pg';
import { openPaymentsDb } from '../../payments/src/payments-db.ts';
import { setUpBroker } from './broker.ts';
import { type DemoConfig, orderSaga, PARTICIPANTS, tables } from './flow.ts';

export interface DemoOptions {
  broker?: 'nats' | 'rabbitmq';
  orders?: number;
  /** Kill and cut for this long (ms) while the orders run; 0 for none. */
  faultsMs?: number;
  log?: (line: string) => void;
  /** A command's wait for its reply. @default 20_000 */
  stepTimeoutMs?: number;
  settleTimeoutMs?: number;
}

export interface Audit {
  orders: number;
  completed: number;
  compensated: number;
  notTerminal: number;
  lost: number;
  /** Orders whose effects do not match their end: a completed one without every effect, a compensated one with effects past the pivot or an authorisation not voided. */
  inconsistent: number;
  duplicateEffects: number;
  compensationsRunTwice: number;
  unpublished: number;
  charges: number;
  duplicateCharges: number;
  effects: Record<string, number>;
  /** Why orders were compensated: `step: reason (error)` → count. */
  failures: Record<string, number>;
  kills: number;
  cuts: number;
  /** Processes restarted by the supervisor after they ended on their own (a lost broker connection). */
  restarts: number;
  seconds: number;
}

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export async function runDemo(options: DemoOptions = {}): Promise<Audit> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const brokerKind = options.broker ?? 'nats';
  const count = options.orders ?? 20;
  const prefix = `orders_${randomBytes(5).toString('hex')}`;
  const direct = brokerKind === 'nats' ? NATS_URL : AMQP_URL;
  const target = new URL(direct);
  const proxy = await faultProxy({
    host: target.hostname,
    port: Number(target.port || (brokerKind === 'nats' ? 4222 : 5672)),
  });
  const config: DemoConfig = {
    prefix,
    broker: brokerKind,
    databaseUrl: DATABASE_URL,
    brokerUrl: proxy.url(direct),
    providerDb: join(tmpdir(), `${prefix}_provider.db`),
    stepTimeoutMs: options.stepTimeoutMs ?? 20_000,
  };
  const t = tables(prefix);
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 10 });
  pool.on('error', () => {});
  const order = orderSaga(config);
  const { outbox } = await import('@oncely/outbox');
  const { inbox } = await import('@oncely/consumer');
  await pool.query(`CREATE TABLE ${t.orders} (id text PRIMARY KEY, state text NOT NULL)`);
  await pool.query(
    `CREATE TABLE ${t.effects} (seq bigserial, participant text NOT NULL, key text NOT NULL, phase text NOT NULL)`,
  );
  await order.migrate(pool);
  await inbox({ consumer: 'x', retentionMs: 1, table: t.inbox }).migrate(pool);
  for (const owner of ['orchestrator', ...PARTICIPANTS] as const)
    await outbox({ table: t.outbox(owner) }).migrate(pool);
  openPaymentsDb(config.providerDb).close();
  const removeBroker = await setUpBroker(config, direct);

  const scripts: Record<string, string[]> = {
    orchestrator: [new URL('./orchestrator.ts', import.meta.url).pathname, JSON.stringify(config)],
  };
  for (const name of PARTICIPANTS) {
    scripts[name] = [new URL('./participant.ts', import.meta.url).pathname, name, JSON.stringify(config)];
  }
  const children = new Map<string, ChildProcess>();
  let shuttingDown = false;
  let restarts = 0;
  const spawnOne = async (name: string): Promise<void> => {
    const child = spawn(process.execPath, ['--conditions=oncely:source', ...scripts[name]!], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.set(name, child);
    // The supervisor: a process that ended on its own (it lost its broker connection) is restarted.
    child.once('exit', () => {
      if (shuttingDown || children.get(name) !== child || (child as { killedByDemo?: boolean }).killedByDemo)
        return;
      restarts += 1;
      setTimeout(() => void spawnOne(name).catch(() => {}), 200);
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
      child.once('exit', (code, signal) =>
        reject(new Error(`${name} exited (${signal ?? code}) before it was ready`)),
      );
    }).catch((error: unknown) => {
      if (child.exitCode === null && child.signalCode === null) throw error;
    });
  };
  const killOne = async (name: string): Promise<void> => {
    const child = children.get(name);
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      (child as { killedByDemo?: boolean }).killedByDemo = true;
      child.kill('SIGKILL');
      await exited;
    }
  };
  let kills = 0;
  let cuts = 0;
  try {
    await Promise.all(Object.keys(scripts).map(spawnOne));
    log(`${Object.keys(scripts).length} processes up on ${brokerKind}; starting ${count} orders`);
    const orchestratorBox = outbox({ table: t.outbox('orchestrator') });
    const faultsMs = options.faultsMs ?? 0;
    const startOrders = (async () => {
      for (let i = 0; i < count; i++) {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await order.start(client, { id: `order_${i}`, data: { orderId: `order_${i}`, amount: 1200 } });
          await client.query('COMMIT');
        } finally {
          client.release();
        }
        orchestratorBox.notify();
        // With faults, orders keep coming while processes die and the broker comes and goes.
        if (faultsMs > 0) await sleep((faultsMs * 0.8) / count);
      }
    })();

    const faultsUntil = performance.now() + faultsMs;
    let lastProgress = 0;
    while (performance.now() < faultsUntil) {
      await sleep(300 + Math.random() * 700);
      if (performance.now() - lastProgress > 3000) {
        lastProgress = performance.now();
        const { rows } = await pool.query(
          `SELECT status, count(*)::int AS n FROM ${t.saga} GROUP BY status ORDER BY status`,
        );
        log(`progress: ${rows.map((r) => `${r.status} ${r.n}`).join(', ')}`);
      }
      if (Math.random() < 0.7) {
        const names = Object.keys(scripts);
        const victim = names[Math.floor(Math.random() * names.length)]!;
        await killOne(victim);
        kills += 1;
        log(`SIGKILL ${victim}`);
        await spawnOne(victim);
      } else {
        cuts += 1;
        log('broker connection cut');
        await proxy.refuse(true);
        await proxy.resetAll();
        await sleep(500 + Math.random() * 1000);
        await proxy.refuse(false);
        log('broker connection restored');
      }
    }
    await startOrders;

    const deadline = performance.now() + (options.settleTimeoutMs ?? 60_000);
    let lastLine = '';
    for (;;) {
      const { rows } = await pool.query(
        `SELECT status, count(*)::int AS n FROM ${t.saga} GROUP BY status ORDER BY status`,
      );
      const line = rows.map((r) => `${r.status} ${r.n}`).join(', ');
      if (line !== lastLine) log(line);
      lastLine = line;
      const open = rows
        .filter((r) => r.status !== 'completed' && r.status !== 'compensated')
        .reduce((a, r) => a + r.n, 0);
      let pending = 0;
      for (const owner of ['orchestrator', ...PARTICIPANTS] as const) {
        pending += (await outbox({ table: t.outbox(owner) }).stats(pool)).pending;
      }
      if (open === 0 && pending === 0) break;
      if (performance.now() > deadline) break;
      await sleep(200);
    }

    // The audit, from the databases only.
    const states = await order.list(pool, { limit: 1_000_000 });
    const effects = (await pool.query(`SELECT participant, key, phase FROM ${t.effects}`)).rows;
    const keys = effects.map((r) => `${r.participant}/${r.phase}/${r.key}`);
    const perParticipant: Record<string, number> = {};
    for (const r of effects)
      perParticipant[`${r.participant}${r.phase === 'compensation' ? ' (undo)' : ''}`] =
        (perParticipant[`${r.participant}${r.phase === 'compensation' ? ' (undo)' : ''}`] ?? 0) + 1;
    let unpublished = 0;
    for (const owner of ['orchestrator', ...PARTICIPANTS] as const) {
      const stats = await outbox({ table: t.outbox(owner) }).stats(pool);
      unpublished += stats.pending + stats.dead;
    }
    const provider = openPaymentsDb(config.providerDb);
    const charges = provider.prepare('SELECT idempotency_key AS k FROM provider_charges').all() as {
      k: string;
    }[];
    provider.close();
    const byOrder = new Map<string, string[]>();
    for (const r of effects) {
      const id = (r.key as string).split(':')[1]!;
      byOrder.set(id, [...(byOrder.get(id) ?? []), `${r.participant}/${r.phase}`]);
    }
    const inconsistent = states.filter((s) => {
      const seen = (byOrder.get(s.id) ?? []).sort().join(' ');
      if (s.status === 'completed') {
        return (
          seen !==
          PARTICIPANTS.map((p) => `${p}/action`)
            .sort()
            .join(' ')
        );
      }
      const paid = seen.includes('payment/action');
      return (
        seen !==
        ['order/compensation', ...(paid ? ['payment/action', 'payment/compensation'] : [])].sort().join(' ')
      );
    }).length;
    const compensationsRunTwice = states.filter(
      (s) => new Set(s.compensated).size !== s.compensated.length,
    ).length;
    return {
      orders: count,
      completed: states.filter((s) => s.status === 'completed').length,
      compensated: states.filter((s) => s.status === 'compensated').length,
      notTerminal: states.filter((s) => s.status !== 'completed' && s.status !== 'compensated').length,
      lost: count - states.length,
      inconsistent,
      duplicateEffects: keys.length - new Set(keys).size,
      compensationsRunTwice,
      unpublished,
      charges: charges.length,
      duplicateCharges: charges.length - new Set(charges.map((c) => c.k.replace(/:\d+$/, ''))).size,
      effects: perParticipant,
      failures: states.reduce<Record<string, number>>((acc, s) => {
        if (s.failure) {
          const why = `${s.failure.step}: ${s.failure.reason} (${s.failure.error})`;
          acc[why] = (acc[why] ?? 0) + 1;
        }
        return acc;
      }, {}),
      kills,
      cuts,
      restarts,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } finally {
    shuttingDown = true;
    await Promise.all([...children.keys()].map(killOne));
    await removeBroker().catch(() => {});
    await proxy.close().catch(() => {});
    for (const table of [
      t.orders,
      t.effects,
      t.saga,
      t.inbox,
      ...['orchestrator', ...PARTICIPANTS].map((o) => t.outbox(o as never)),
    ]) {
      await pool.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    }
    await pool.end();
    rmSync(config.providerDb, { force: true });
    rmSync(`${config.providerDb}-wal`, { force: true });
    rmSync(`${config.providerDb}-shm`, { force: true });
  }
}
