/** The servers of one case run: the server under test (and the gateway in front of it), then cleanup. */
import { join } from 'node:path';
import type { Case } from './cases.ts';
import { type RunningServer, startGateway, startServer } from './processes.ts';
import { cleanup, newTag, type Services } from './state.ts';

export interface Target {
  tag: string;
  /** Where the load goes: the gateway for gateway cases, else the server. */
  url: string;
  /** The process that runs the handler and counts its side effects. */
  handler: RunningServer;
  /** Every server-side process of the case (the gateway and its upstream), for CPU accounting. */
  pids: number[];
}

export interface TargetOptions extends Services {
  tmpDir: string;
  bodyBytes?: number;
}

export async function withTarget<T>(
  c: Case,
  options: TargetOptions,
  fn: (target: Target) => Promise<T>,
): Promise<T> {
  const tag = newTag();
  const sqlitePath = join(options.tmpDir, `${tag}.db`);
  const stops: Array<() => Promise<void>> = [];
  try {
    const handler = await startServer({
      framework: c.framework,
      variant: c.variant,
      ...(c.store ? { store: c.store } : {}),
      tag,
      sqlitePath,
      redisUrl: options.redisUrl,
      databaseUrl: options.databaseUrl,
      ...(options.bodyBytes ? { bodyBytes: options.bodyBytes } : {}),
    });
    stops.push(handler.stop);
    let url = handler.url;
    const pids = [handler.pid];
    if (c.gatewayStore) {
      const gateway = await startGateway(handler.url, c.gatewayStore);
      stops.push(gateway.stop);
      url = gateway.url;
      pids.push(gateway.pid);
    }
    return await fn({ tag, url, handler, pids });
  } finally {
    for (const stop of stops.reverse()) await stop();
    await cleanup(tag, options, sqlitePath);
  }
}
