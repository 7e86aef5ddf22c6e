/**
 * The gateway's own endpoints, `<prefix>/healthz` and `<prefix>/metrics`: served by the gateway,
 * never proxied. With a prefix every path under it is the gateway's; with none, only the two.
 */

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '@oncely/core';
import type { GatewayMetrics } from './metrics.ts';
import { plainProblem } from './problems.ts';
import { send } from './send-response.ts';

export interface AdminOptions {
  /** '' or a path such as `/_oncely`, without a trailing slash. */
  prefix: string;
  metrics: GatewayMetrics;
  store: Store;
  /** The engine's clock, for the health check's `get`. */
  clock: () => number;
  healthTimeoutMs: number;
}

export interface Admin {
  /** True for the paths the gateway serves itself. */
  owns(path: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
}

/** The admin endpoints of one gateway. */
export function adminEndpoints({ prefix, metrics, store, clock, healthTimeoutMs }: AdminOptions): Admin {
  /** The store answers a `get` of a random id within `healthTimeoutMs`: it is reachable and working. */
  async function checkStore(): Promise<{ ok: true } | { ok: false; error: string }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${healthTimeoutMs} ms`)), healthTimeoutMs);
    });
    try {
      await Promise.race([store.get({ id: randomBytes(32).toString('hex'), now: clock() }), timeout]);
      return { ok: true };
    } catch (error) {
      return { ok: false, error: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    owns(path) {
      if (prefix === '') return path === '/healthz' || path === '/metrics';
      return path === prefix || path.startsWith(`${prefix}/`);
    },

    async handle(req, res, path) {
      // Nothing is read from an admin request; drop a body if one was sent.
      req.resume();
      const endpoint = path.slice(prefix.length);
      if (endpoint !== '/healthz' && endpoint !== '/metrics') {
        send(
          res,
          plainProblem(404, 'Not Found', `The gateway serves ${prefix}/healthz and ${prefix}/metrics.`),
        );
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        send(res, plainProblem(405, 'Method Not Allowed', `${path} answers GET and HEAD.`));
        return;
      }
      const noStore: [string, string] = ['cache-control', 'no-store'];
      if (endpoint === '/metrics') {
        send(res, {
          status: 200,
          headers: [['content-type', 'text/plain; version=0.0.4; charset=utf-8'], noStore],
          body: new TextEncoder().encode(metrics.render()),
        });
        return;
      }
      const health = await checkStore();
      const body = health.ok
        ? { status: 'ok', store: store.name }
        : { status: 'unavailable', store: store.name, error: health.error };
      send(res, {
        status: health.ok ? 200 : 503,
        headers: [['content-type', 'application/json'], noStore],
        body: new TextEncoder().encode(JSON.stringify(body)),
      });
    },
  };
}
