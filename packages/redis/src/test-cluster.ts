/**
 * A throwaway Redis Cluster for tests: three masters on spare local ports, no replicas, no
 * persistence, in a temp dir that is removed afterwards. Needs redis-server and redis-cli.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';
const REDIS_CLI = process.env.REDIS_CLI ?? '/usr/bin/redis-cli';
/** Redis Cluster talks node to node on the client port + 10000: both must be free. */
const BUS_OFFSET = 10_000;

export interface TestCluster {
  ports: number[];
  /** The redis-server processes, by port order: a test may SIGSTOP/SIGCONT its own private server. */
  pids: number[];
  /** Run redis-cli against one node; resolves with its stdout. */
  cli(port: number, ...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Resolves once `port` could be bound on 127.0.0.1 (and is released again), false if taken. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port the OS calls free, whose cluster bus port is free too. */
async function sparePort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port === 0 || port + BUS_OFFSET > 65_535 || taken.has(port) || taken.has(port + BUS_OFFSET)) continue;
    if (await isFree(port + BUS_OFFSET)) return port;
  }
  throw new Error('no spare port pair (port, port + 10000) found for a cluster node');
}

async function until(what: string, deadline: number, check: () => Promise<boolean>): Promise<void> {
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** Start three masters, join them into a cluster and wait for `cluster_state:ok` on each. */
export async function startCluster(
  options: { masters?: number; timeoutMs?: number; cluster?: boolean } = {},
): Promise<TestCluster> {
  // cluster: false starts plain servers: a private Redis for tests that must change server-wide state.
  const clustered = options.cluster ?? true;
  const masters = options.masters ?? 3;
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const dir = mkdtempSync(join(tmpdir(), 'oncely-redis-cluster-'));
  const servers: ChildProcess[] = [];
  const logs = new Map<number, string>();
  const taken = new Set<number>();
  const ports: number[] = [];

  // If the test process dies without running its hooks, do not leave servers behind.
  const killAll = (): void => {
    for (const server of servers) if (server.exitCode === null) server.kill('SIGKILL');
  };
  process.once('exit', killAll);

  const stop = async (): Promise<void> => {
    await Promise.all(
      servers.map(async (server) => {
        if (server.exitCode !== null || server.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
        server.kill('SIGTERM');
        const killed = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]);
        if (!killed) {
          server.kill('SIGKILL');
          await exited;
        }
      }),
    );
    process.off('exit', killAll);
    await rm(dir, { recursive: true, force: true });
  };

  const cli = async (port: number, ...args: string[]): Promise<string> =>
    (await run(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 })).stdout;

  try {
    for (let i = 0; i < masters; i++) {
      const port = await sparePort(taken);
      taken.add(port).add(port + BUS_OFFSET);
      ports.push(port);
      // biome-ignore format: one flag and its value per line
      const server = spawn(REDIS_SERVER, [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--dir', dir,
        ...(clustered ? ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '5000'] : []),
        '--save', '',
        '--appendonly', 'no',
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      logs.set(port, '');
      const log = (chunk: Buffer): void => void logs.set(port, (logs.get(port) ?? '') + chunk.toString());
      server.stdout?.on('data', log);
      server.stderr?.on('data', log);
      servers.push(server);
    }
    for (const [i, port] of ports.entries()) {
      await until(`redis-server on port ${port} (log: ${logs.get(port)})`, deadline, async () => {
        if (servers[i]?.exitCode !== null) throw new Error(`redis-server exited: ${logs.get(port)}`);
        return (await cli(port, 'PING')).trim() === 'PONG';
      });
    }
    if (!clustered) return { ports, pids: servers.map((server) => server.pid!), cli, stop };
    await run(
      REDIS_CLI,
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { timeout: Math.max(1000, deadline - Date.now()) },
    );
    for (const port of ports) {
      await until(`cluster_state:ok on port ${port}`, deadline, async () =>
        (await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'),
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { ports, pids: servers.map((server) => server.pid!), cli, stop };
}
