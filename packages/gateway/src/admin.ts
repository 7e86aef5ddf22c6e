/**
 * The gateway's own endpoints, `<prefix>/healthz` and `<prefix>/metrics`: served by the gateway,
 * never proxied. With a prefix every path under it is the gateway's; with none, only the two.
 */

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { plainProblem, type Store } from '@oncely/core';
import { writeResponse as send } from '@oncely/core/node';
import type { GatewayMetrics } from './metrics.ts';

/** The admin paths, under the prefix: liveness, readiness (and its older name), metrics. */
const ENDPOINTS: ReadonlySet<string> = new Set(['/livez', '/readyz', '/healthz', '/metrics']);

export interface AdminOptions {
  /** '' or a path such as `/_oncely`, without a trailing slash. */
  prefix: string;
  metrics: GatewayMetrics;
  store: Store;
  /** The engine's clock, for the health check's `get`. */
  clock: () => number;
  healthTimeoutMs: number;
}

/** What the health check found: `ok`, `degraded` (reachable, cannot write) or `unavailable`. */
type StoreCheck =
  | { status: 'ok' }
  | { status: 'degraded'; detail: string }
  | { status: 'unavailable'; error: string };

export interface Admin {
  /** True for the paths the gateway serves itself. */
  owns(path: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
}

/** The admin endpoints of one gateway. */
export function adminEndpoints({ prefix, metrics, store, clock, healthTimeoutMs }: AdminOptions): Admin {
  /**
   * The store answers a `get` of a random id within `healthTimeoutMs`: it is reachable and working.
   * A store with `health()` is then asked, within the same time, whether it can write: one that
   * answers reads but cannot write (a SQLite file whose lock another process holds) is degraded.
   */
  async function checkStore(): Promise<StoreCheck> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${healthTimeoutMs} ms`)), healthTimeoutMs);
    });
    const probe = async (): Promise<StoreCheck> => {
      await store.get({ id: randomBytes(32).toString('hex'), now: clock() });
      const health = await store.health?.();
      if (health === undefined || health.writable) return { status: 'ok' };
      return { status: 'degraded', detail: health.detail ?? 'the store cannot take writes' };
    };
    try {
      return await Promise.race([probe(), timeout]);
    } catch (error) {
      return { status: 'unavailable', error: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    owns(path) {
      if (prefix === '') return ENDPOINTS.has(path);
      return path === prefix || path.startsWith(`${prefix}/`);
    },

    async handle(req, res, path) {
      // Nothing is read from an admin request; drop a body if one was sent.
      req.resume();
      const endpoint = path.slice(prefix.length);
      if (!ENDPOINTS.has(endpoint)) {
        send(
          res,
          plainProblem(
            404,
            'Not Found',
            `The gateway serves ${prefix}/livez, ${prefix}/readyz (= ${prefix}/healthz) and ${prefix}/metrics.`,
          ),
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
      if (endpoint === '/livez') {
        // Liveness does not ask the store: a Redis outage must not make an orchestrator restart
        // every replica (they would come back to the same outage). The process answers: it lives.
        send(res, {
          status: 200,
          headers: [['content-type', 'application/json'], noStore],
          body: new TextEncoder().encode(JSON.stringify({ status: 'ok' })),
        });
        return;
      }
      // Readiness (`/readyz`, and `/healthz` as before): the store answers and can take writes.
      const { status, ...rest } = await checkStore();
      // Degraded is a 503 too: a gateway that cannot record a key cannot take keyed requests, and a
      // load balancer should send them elsewhere (passthrough traffic would still be served).
      const body = { status, store: store.name, ...rest };
      send(res, {
        status: status === 'ok' ? 200 : 503,
        headers: [['content-type', 'application/json'], noStore],
        body: new TextEncoder().encode(JSON.stringify(body)),
      });
    },
  };
}
