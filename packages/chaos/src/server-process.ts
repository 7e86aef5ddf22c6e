/**
 * A server role of the chaos test (the gateway, the adapter, a transactional server) as a slot that
 * always holds at most one process: started, SIGKILLed by the chaos loop, started again on a new
 * port. Only processes this slot spawned are ever signalled, and only by their own pid.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Kill, now } from './timeline.ts';

/** The `oncely` CLI of @oncely/gateway, as its own tests run it. */
export const ONCELY_BIN = join(
  dirname(fileURLToPath(import.meta.resolve('@oncely/gateway'))),
  '..',
  'bin',
  'oncely.js',
);
export const NODE_ARGS = ['--conditions=oncely:source'];
const READY = /^listening on (http:\/\/\S+)$/;
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

export interface ServerCommand {
  role: string;
  /** Arguments after `node --conditions=oncely:source`: a script and its arguments. */
  args: readonly string[];
}

export interface RunningServer {
  role: string;
  pid: number;
  url: string;
}

export interface ServerSlot {
  readonly role: string;
  /** The process now up, or undefined while it is being started. */
  current(): RunningServer | undefined;
  /** The process now up, or the one being started once it is ready. */
  next(): Promise<RunningServer>;
  /** Start the first process. */
  start(): Promise<RunningServer>;
  /** SIGKILL the current process and start a new one; resolves once the new one is ready. */
  killAndRestart(): Promise<Kill>;
  /** SIGTERM the current process and wait until every process of this slot has closed its output. */
  stop(): Promise<void>;
}

export interface SlotOptions {
  /** Every stdout line of every process (besides the ready line). */
  onLine?: (line: string, server: { role: string; pid: number }) => void;
  /** A process ended without this slot killing or stopping it: a crash the run must report. */
  onUnexpectedExit: (detail: string) => void;
  /** Every process started, for naming pids in findings. */
  onStart?: (server: RunningServer) => void;
}

interface Child {
  process: ChildProcess;
  pid: number;
  expectedExit: boolean;
  closed: Promise<void>;
  stderr: () => string;
}

export function serverSlot(command: ServerCommand, options: SlotOptions): ServerSlot {
  const children: Child[] = [];
  let running: { server: RunningServer; child: Child } | undefined;
  let pending: Promise<RunningServer> | undefined;
  let stopping = false;

  const launch = (): Promise<RunningServer> => {
    const proc = spawn(process.execPath, [...NODE_ARGS, ...command.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env,
    });
    const pid = proc.pid;
    if (pid === undefined) return Promise.reject(new Error(`could not spawn the ${command.role} process`));
    let err = '';
    proc.stderr!.on('data', (chunk: Buffer) => {
      err = (err + chunk.toString()).slice(-4_000);
    });
    const closed = new Promise<void>((resolve) => proc.once('close', () => resolve()));
    const child: Child = { process: proc, pid, expectedExit: false, closed, stderr: () => err };
    children.push(child);
    const lines = createInterface({ input: proc.stdout! });
    return new Promise<RunningServer>((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => {
        child.expectedExit = true;
        proc.kill('SIGKILL');
        reject(
          new Error(
            `the ${command.role} process (pid ${pid}) was not ready within ${START_TIMEOUT_MS} ms:\n${err}`,
          ),
        );
      }, START_TIMEOUT_MS);
      lines.on('line', (line) => {
        const match = ready ? null : READY.exec(line);
        if (!match) {
          options.onLine?.(line, { role: command.role, pid });
          return;
        }
        ready = true;
        clearTimeout(timer);
        const server = { role: command.role, pid, url: match[1]! };
        running = { server, child };
        options.onStart?.(server);
        resolve(server);
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (running?.child === child) running = undefined;
        if (child.expectedExit || stopping) return;
        const detail = `the ${command.role} process (pid ${pid}) exited on its own (${code ?? signal})${ready ? '' : ' before it was ready'}:\n${err}`;
        if (!ready) reject(new Error(detail));
        else options.onUnexpectedExit(detail);
      });
    });
  };

  const startNext = (): Promise<RunningServer> => {
    const started = launch();
    pending = started;
    void started.then(
      () => {
        if (pending === started) pending = undefined;
      },
      () => {},
    );
    return started;
  };

  return {
    role: command.role,
    current: () => running?.server,
    next: () => {
      if (running) return Promise.resolve(running.server);
      if (pending) return pending;
      return Promise.reject(new Error(`the ${command.role} slot has no process`));
    },
    start: startNext,
    async killAndRestart() {
      const victim = running ?? (await pending?.then(() => running));
      if (!victim) throw new Error(`the ${command.role} slot has no process to kill`);
      running = undefined;
      victim.child.expectedExit = true;
      victim.child.process.kill('SIGKILL');
      const kill: Kill = { role: command.role, pid: victim.server.pid, at: now() };
      await startNext();
      return kill;
    },
    async stop() {
      stopping = true;
      await pending?.catch(() => {});
      for (const child of children) {
        const proc = child.process;
        if (proc.exitCode !== null || proc.signalCode !== null) continue;
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await child.closed;
        clearTimeout(timer);
      }
      await Promise.all(children.map((child) => child.closed));
    },
  };
}
