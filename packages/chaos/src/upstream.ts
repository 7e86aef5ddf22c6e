/**
 * The counting upstream: the service behind the gateway and the adapter, in the test process. Every
 * request that reaches it is an execution of the work: it is recorded with its key, the server process
 * that sent it (the `x-chaos-pid` header: the adapter sets its own pid, the gateway forwards the one the
 * driver addressed), the time, and a fresh execution id that the success body carries. It answers
 * after a random delay, so kills and client timeouts land while executions are in flight.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { between, type Random } from './random.ts';
import { type Execution, now } from './timeline.ts';

export const PID_HEADER = 'x-chaos-pid';

export interface CountingUpstream {
  url: string;
  executions: Execution[];
  /** Requests it could not attribute (no key or no pid): a broken setup, reported as a finding. */
  malformed: string[];
  close(): Promise<void>;
}

export interface CountingUpstreamOptions {
  random: Random;
  /** The answer comes after a delay drawn from [min, max] ms. */
  delayMs: readonly [number, number];
}

export async function startCountingUpstream(options: CountingUpstreamOptions): Promise<CountingUpstream> {
  const executions: Execution[] = [];
  const malformed: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const at = now();
      const pid = Number(req.headers[PID_HEADER]);
      let key: unknown;
      try {
        key = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { key?: unknown }).key;
      } catch {}
      if (req.method !== 'POST' || req.url !== '/pay' || typeof key !== 'string' || !Number.isInteger(pid)) {
        malformed.push(`${req.method} ${req.url} pid=${String(req.headers[PID_HEADER])} key=${String(key)}`);
        res.writeHead(400).end();
        return;
      }
      const exec = randomUUID();
      executions.push({ key, exec, pid, at });
      const body = JSON.stringify({ exec, key });
      setTimeout(
        () => {
          if (res.destroyed) return;
          res.writeHead(200, { 'content-type': 'application/json' }).end(body);
        },
        between(options.random, options.delayMs[0], options.delayMs[1]),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    executions,
    malformed,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
