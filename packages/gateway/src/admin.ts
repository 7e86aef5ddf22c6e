/**
 * The gateway's own endpoints, `<prefix>/healthz` and `<prefix>/metrics`: served by the gateway,
 * never proxied. With a prefix every path under it is the gateway's; with none, only the two.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { plainProblem, type Store } from '@oncely/core';
import { writeResponse as send } from '@oncely/core/node';
import type { GatewayMetrics } from './metrics.ts';
import { probeStore, type StoreCheck } from './store-probe.ts';

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

export interface Admin {
  /** True for the paths the gateway serves itself. */
  owns(path: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
}

/** The admin endpoints of one gateway. */
export function adminEndpoints({ prefix, metrics, store, clock, healthTimeoutMs }: AdminOptions): Admin {
  const checkStore = (): Promise<StoreCheck> => probeStore(store, { timeoutMs: healthTimeoutMs, now: clock });

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
