// Test helper: `main.ts` (what `npm start` runs) in a child process, resolved once it printed its URL.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

export interface DemoProcess {
  child: ChildProcess;
  url: string;
  /** Everything the demo printed up to and including its start-up banner. */
  banner: () => string;
}

export function startDemo(env: Record<string, string>): Promise<DemoProcess> {
  const child = spawn(process.execPath, [...process.execArgv, join(import.meta.dirname, 'main.ts')], {
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      // The banner is printed with one write; wait for its last line.
      if (match && out.includes('Count the charges')) resolve({ child, url: match[1]!, banner: () => out });
    });
    child.once('exit', (code, signal) => reject(new Error(`demo exited early: ${code ?? signal}`)));
  });
}
