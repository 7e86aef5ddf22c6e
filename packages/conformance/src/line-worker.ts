import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A child process running a test script with this process's `execArgv`, talking in stdout lines. */
export interface LineWorker {
  child: ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  /** Resolves with the first stdout line starting with `prefix`; rejects on a line `error …` or an exit first. */
  line(prefix: string): Promise<string>;
  exited: Promise<NodeJS.Signals | number | null>;
}

/**
 * Start `script` (a path or a file URL) with `config` as its JSON argument, for crash tests that
 * SIGKILL a process at a point it announces on stdout. It inherits `execArgv`, so it runs .ts and
 * resolves the `@oncely/*` packages as the test does; its stdin is a pipe the test may write or close.
 * @example
 * const worker = startLineWorker(new URL('./test-worker.ts', import.meta.url), { at: 'commit' });
 * await worker.line('ready');
 * worker.child.kill('SIGKILL');
 */
export function startLineWorker(script: string | URL, config: unknown): LineWorker {
  const path = script instanceof URL ? script.pathname : script;
  const child = spawn(process.execPath, [...process.execArgv, path, JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const wake of waiters.splice(0)) wake();
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      resolve(signal ?? code);
      for (const wake of waiters.splice(0)) wake();
    }),
  );
  const line = async (prefix: string): Promise<string> => {
    for (;;) {
      const found = lines.find((l) => l.startsWith(prefix));
      if (found) return found;
      const failed = lines.find((l) => l.startsWith('error'));
      if (failed) throw new Error(`worker failed: ${failed}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`worker exited before printing "${prefix}": ${lines.join(' | ')}`);
      }
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  return { child, lines, line, exited };
}
