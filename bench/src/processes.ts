/** Starting and stopping the servers under test, each in its own child process. */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Reply, ServerSpec } from './server/spec.ts';

const SERVER_ENTRY = fileURLToPath(new URL('./server/main.ts', import.meta.url));
const CHILD_FLAGS = ['--conditions=oncely:source', '--expose-gc'];
const START_TIMEOUT_MS = 20_000;

export interface RunningServer {
  url: string;
  pid: number;
  /** Side effects the handler counted, for `keys`. */
  effects(keys: string[]): Promise<{ executions: number; perKey: Record<string, number> }>;
  rss(): Promise<{ rss: number; heapUsed: number; external: number }>;
  stop(): Promise<void>;
}

/** Fork `server/main.ts` with `spec`, resolve once it listens. */
export async function startServer(spec: ServerSpec): Promise<RunningServer> {
  const child = fork(SERVER_ENTRY, [JSON.stringify(spec)], {
    execPath: process.execPath,
    execArgv: CHILD_FLAGS,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  relayOnce(child, spec.tag);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server ${spec.tag} did not start`)), START_TIMEOUT_MS);
    child.on('message', (message: Reply) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve(message.port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server ${spec.tag} exited with ${code} before it listened`));
    });
  });
  let nextId = 1;
  const ask = <T extends Reply>(message: object): Promise<T> =>
    new Promise((resolve) => {
      const id = nextId++;
      const onMessage = (reply: Reply) => {
        if ('id' in reply && reply.id === id) {
          child.off('message', onMessage);
          resolve(reply as T);
        }
      };
      child.on('message', onMessage);
      child.send({ ...message, id });
    });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid ?? 0,
    effects: async (keys) => {
      const reply = await ask<Extract<Reply, { type: 'effects' }>>({ type: 'effects', keys });
      return { executions: reply.executions, perKey: reply.perKey };
    },
    rss: async () => {
      const reply = await ask<Extract<Reply, { type: 'rss' }>>({ type: 'rss' });
      return { rss: reply.rss, heapUsed: reply.heapUsed, external: reply.external };
    },
    stop: () => stopChild(child),
  };
}

/** The gateway CLI (`oncely proxy`) in front of `upstream`, started as a user would start it. */
export async function startGateway(
  upstream: string,
  store: string,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const bin = fileURLToPath(new URL('../bin/oncely.js', import.meta.resolve('@oncely/gateway')));
  const child = spawn(
    process.execPath,
    [...CHILD_FLAGS, bin, 'proxy', '--upstream', upstream, '--port', String(port), '--store', store],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}: ${stderr.trim()}`);
    try {
      const response = await fetch(`${url}/_oncely/healthz`);
      await response.arrayBuffer();
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`gateway did not answer /_oncely/healthz: ${stderr.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, pid: child.pid ?? 0, stop: () => stopChild(child) };
}

/**
 * A server's stderr, each distinct line once: a peer that warns on every request (Powertools outside
 * Lambda) still pays for writing it, but the harness's output stays readable.
 */
function relayOnce(child: ChildProcess, tag: string): void {
  const seen = new Set<string>();
  let pending = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString()).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '' || seen.has(line)) continue;
      seen.add(line);
      process.stderr.write(
        `  [server ${tag}] ${line}${seen.size === 50 ? ' (further lines not shown)' : ''}\n`,
      );
      if (seen.size >= 50) child.stderr?.removeAllListeners('data').resume();
    }
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/** CPU seconds (user + system) a process has used so far, from Linux's /proc; 0 elsewhere. */
export async function cpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** USER_HZ: 100 on every Linux build Node runs on. */
const CLOCK_TICKS = 100;

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}
