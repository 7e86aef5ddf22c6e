/**
 * The gateway: a node:http server in front of any HTTP service. Requests it does not record stream
 * through untouched (`passthrough.ts`); recorded ones are read through core's Node edge, decided by
 * core's HTTP layer (`httpIdempotency`: key parsing, fingerprint, every status), forwarded with
 * their `Idempotency-Key` (`execute.ts`), and the upstream's response is kept before the client sees
 * it. Options are checked once (`gateway-options.ts`). This file routes each request and says what
 * the client is told; the gateway only translates, as every adapter does.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ERROR_CODES,
  type HttpDecision,
  type HttpIdempotency,
  httpIdempotency,
  isOncelyError,
  OncelyError,
  type OncelyEvent,
  plainProblem,
  problemResponse,
  type RespondReason,
  splitTarget,
} from '@oncely/core';
import {
  BodyTooLargeError,
  badTarget,
  RequestAbortedError,
  readBody,
  requestInfo,
  writeResponse,
} from '@oncely/core/node';
import { type Admin, adminEndpoints } from './admin.ts';
import { execute } from './execute.ts';
import {
  type GatewayOptions,
  type ResolvedGatewayOptions,
  resolveGatewayOptions,
} from './gateway-options.ts';
import { type CommitResult, GatewayMetrics, type Outcome } from './metrics.ts';
import { passthrough } from './passthrough.ts';
import { scopeOf } from './scope.ts';
import { timedStore } from './timed-store.ts';
import { formatDuration, formatSize } from './units.ts';
import type { UpstreamError } from './upstream.ts';

export { GATEWAY_DEFAULTS, type GatewayLogEntry, type GatewayOptions } from './gateway-options.ts';

/** A gateway: its server, metrics and lifecycle. */
export interface Gateway {
  readonly server: Server;
  readonly metrics: GatewayMetrics;
  /** Start listening; resolves with the base URL (`http://127.0.0.1:8080`). */
  listen(options?: { port?: number; host?: string }): Promise<string>;
  /**
   * Stop accepting connections, let requests in flight finish (their responses kept), wait for
   * background completions, close idle connections. The store is the caller's to close.
   */
  close(): Promise<void>;
}

type Execute = Extract<HttpDecision, { kind: 'execute' }>;

/** How one request ended, for its count and its log line. */
interface Result {
  outcome: Outcome;
  status: number;
  commit?: CommitResult;
  error?: string;
}

/** What routing a request needs: the resolved options and the parts built from them. */
interface Routes {
  options: ResolvedGatewayOptions;
  http: HttpIdempotency;
  admin: Admin;
  metrics: GatewayMetrics;
}

/**
 * Create the gateway. Options are checked at once: an unknown or invalid one throws
 * `ERR_ONCELY_INVALID_OPTION`.
 * @example
 * const gateway = createGateway({ upstream: 'http://127.0.0.1:3000', store: sqliteStore({ database: './oncely.db' }) });
 * console.log(`listening on ${await gateway.listen({ port: 8080 })}`);
 */
export function createGateway(options: GatewayOptions): Gateway {
  const resolved = resolveGatewayOptions(options);
  const { log, target } = resolved;
  const metrics = new GatewayMetrics();
  const userOnEvent = resolved.http.onEvent;
  const onEvent = (event: OncelyEvent): void => {
    metrics.event(event);
    if (event.type === 'store_error') {
      log({
        level: 'warn',
        msg: 'store_error',
        operation: event.operation ?? 'unknown',
        keyHash: event.keyHash,
        error: messageOf(event.error),
      });
    } else if (event.type === 'lease_lost') {
      log({ level: 'warn', msg: 'lease_lost', keyHash: event.keyHash });
    } else if (event.type === 'execution_timeout') {
      log({ level: 'warn', msg: 'execution_timeout', keyHash: event.keyHash });
    }
    userOnEvent?.(event);
  };
  const store = timedStore(resolved.store, (operation, seconds, failed) =>
    metrics.storeCall(operation, seconds, failed),
  );
  const http = httpIdempotency({ ...resolved.http, store, onEvent });
  // Health checks go through the timed store: their `get` is the store latency a probe sees.
  const admin = adminEndpoints({
    prefix: resolved.adminPrefix,
    metrics,
    store,
    clock: http.oncely.options.clock,
    healthTimeoutMs: resolved.healthTimeoutMs,
  });
  const routes: Routes = { options: resolved, http, admin, metrics };

  const server = createServer();
  const inFlight = new Set<Promise<void>>();
  let closing = false;
  let closed: Promise<void> | undefined;

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    metrics.requestsInFlight++;
    // A new request on a kept-alive connection during shutdown is served, and its connection closed.
    if (closing) res.setHeader('connection', 'close');
    const closedRes = new Promise<void>((resolve) => res.once('close', resolve));
    const handled = route(routes, req, res).catch((error: unknown) => {
      log({ level: 'error', msg: 'error', error: messageOf(error) });
      if (!res.headersSent) {
        writeResponse(res, plainProblem(500, 'Internal Server Error', 'The gateway failed.'));
      } else res.destroy();
    });
    const done = Promise.all([handled, closedRes]).then(() => {
      metrics.requestsInFlight--;
      inFlight.delete(done);
      if (closing) server.closeIdleConnections();
    });
    inFlight.add(done);
  });

  return {
    server,
    metrics,
    listen({ port = 8080, host = '127.0.0.1' } = {}) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          resolve(`http://${shown}:${address.port}`);
        });
      });
    },
    close() {
      closed ??= (async () => {
        closing = true;
        const stopped = new Promise<void>((resolve) => {
          if (!server.listening) resolve();
          else server.close(() => resolve());
        });
        server.closeIdleConnections();
        while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
        // Only idle connections (or ones still sending a request head) are left.
        server.closeAllConnections();
        await stopped;
        await http.oncely.drain();
        target.agent.destroy();
      })();
      return closed;
    },
  };
}

/**
 * Route one request: the gateway's own paths, passthrough for what is not recorded, and for the
 * rest core's decision (replay or problem as it is, or one trip upstream).
 */
async function route(routes: Routes, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { options, http, admin, metrics } = routes;
  const started = performance.now();
  const target = splitTarget(req.url ?? '/');
  if (target === null) {
    writeResponse(res, badTarget());
    return;
  }
  const { path } = target;
  const pathAndQuery = `${path}${target.query}`;
  const method = req.method ?? 'GET';

  if (admin.owns(path)) {
    await admin.handle(req, res, path);
    return;
  }
  // What the decision told about the request, for its log line.
  const seen: { keyHash?: string; takeover?: boolean } = {};
  // One count per request, and one log line per request the idempotency layer looked at (or
  // that failed upstream): passthrough traffic is counted, not logged.
  const finish = ({ outcome, status, commit, error }: Result): void => {
    const seconds = (performance.now() - started) / 1000;
    metrics.request(outcome, seconds);
    if (outcome === 'passthrough') return;
    const failed =
      outcome === 'upstream_error' || outcome === 'upstream_timeout' || outcome === 'store_unavailable';
    options.log({
      level: failed ? 'warn' : 'info',
      msg: 'request',
      outcome,
      method,
      path,
      status,
      durationMs: Math.round(seconds * 1e4) / 10,
      ...(seen.keyHash ? { keyHash: seen.keyHash } : {}),
      ...(commit ? { commit } : {}),
      ...(seen.takeover ? { takeover: true } : {}),
      ...(commit === 'lease_lost' ? { leaseLost: true } : {}),
      ...(error ? { error } : {}),
    });
  };
  const relay = async (): Promise<Result> => {
    const passed = await passthrough(req, res, {
      target: options.target,
      path: pathAndQuery,
      upstreamTimeoutMs: options.upstreamTimeoutMs,
    });
    return passed.kind === 'failed'
      ? upstreamFailed(res, passed.failure, false)
      : { outcome: 'passthrough', status: passed.status };
  };
  if (!http.covers(method)) {
    finish(await relay());
    return;
  }

  let body: Uint8Array | undefined;
  let decision: HttpDecision;
  try {
    const scopeValue = options.scopeHeader === undefined ? undefined : req.headers[options.scopeHeader];
    const required =
      typeof options.required === 'function' ? options.required({ method, path }) : options.required;
    const info = requestInfo(req, res, {
      target,
      scope: typeof scopeValue === 'string' ? scopeOf(scopeValue) : '',
      body: async () => {
        body = await readBody(req, { limit: options.maxBodyBytes });
        return body;
      },
    });
    decision = await http.handle(info, { required });
  } catch (error) {
    if (error instanceof BodyTooLargeError) {
      // The rest of the upload is read and dropped (readBody left the stream flowing), and the
      // connection closed after the answer: it is not worth keeping for a client this far over.
      res.setHeader('connection', 'close');
      const problem = problemResponse(
        new OncelyError(
          'ERR_ONCELY_BODY_TOO_LARGE',
          `Requests with an Idempotency-Key may carry at most ${formatSize(options.maxBodyBytes)}; nothing was run.`,
        ),
      );
      writeResponse(res, problem);
      finish({ outcome: 'too_large', status: problem.status });
      return;
    }
    if (error instanceof RequestAbortedError) {
      res.destroy();
      finish({ outcome: 'invalid', status: 400, error: error.message });
      return;
    }
    throw error;
  }

  switch (decision.kind) {
    case 'pass':
      finish(await relay());
      return;
    case 'respond':
      if (decision.keyHash !== '') seen.keyHash = decision.keyHash;
      writeResponse(res, decision.response);
      finish({ outcome: respondOutcome(decision.reason), status: decision.response.status });
      return;
    case 'execute': {
      seen.keyHash = decision.keyHash;
      seen.takeover = decision.takeover;
      const ran = await execute(req, res, {
        decision,
        body: body ?? new Uint8Array(0),
        path: pathAndQuery,
        target: options.target,
        upstreamTimeoutMs: options.upstreamTimeoutMs,
        maxResponseBytes: http.oncely.options.maxResponseBytes,
        metrics,
      });
      if (ran.kind === 'lease_lost') finish(leaseLost(res, decision, http.oncely.options.leaseMs));
      else if (ran.kind === 'failed') finish(upstreamFailed(res, ran.failure, true));
      else finish({ outcome: 'executed', status: ran.status, commit: ran.commit });
      return;
    }
  }
}

/** The upstream call was cut because the lease was lost: nothing to keep or release (not ours). */
function leaseLost(res: ServerResponse, decision: Execute, leaseMs: number): Result {
  const error = isOncelyError(decision.signal.reason)
    ? decision.signal.reason
    : new OncelyError('ERR_ONCELY_LEASE_LOST', 'The lease on this key was lost.');
  if (error.code === 'ERR_ONCELY_EXECUTION_TIMEOUT') {
    // The execution bound is the upstream timeout: the same 504 as an upstream that went silent,
    // except that the key is not released at once but frees when its lease lapses.
    const problem = problemResponse(
      new OncelyError(
        'ERR_ONCELY_UPSTREAM_TIMEOUT',
        `The upstream service did not finish in time; the call was cut. The Idempotency-Key frees within one lease (${formatDuration(leaseMs)}): retry with it then.`,
      ),
    );
    answerOrCut(res, problem);
    return { outcome: 'upstream_timeout', status: problem.status, commit: 'timed_out' };
  }
  answerOrCut(res, problemResponse(error));
  return { outcome: 'executed', status: error.status, commit: 'lease_lost' };
}

/** A 502 or 504 problem, or, when the response head is already out, a cut connection. */
function upstreamFailed(res: ServerResponse, failure: UpstreamError, recorded: boolean): Result {
  const timeout = failure.kind === 'timeout';
  const outcome = timeout ? 'upstream_timeout' : 'upstream_error';
  if (!res.headersSent && !res.destroyed) {
    // Whether it arrived and was acted on, the gateway cannot tell, so it says so (and did not send a
    // request that is not safe to repeat again: RFC 9110 §9.2.2). It went with its key: retried
    // with the same one, an upstream that dedupes recognises it.
    const reached = failure.reached ? ' The request may have reached it.' : '';
    const dedupe = failure.reached
      ? ' (the upstream got it with this attempt: if it dedupes, it knows the retry)'
      : '';
    const released = recorded ? ` The Idempotency-Key was released: retry with the same key${dedupe}.` : '';
    writeResponse(
      res,
      timeout
        ? problemResponse(
            new OncelyError(
              'ERR_ONCELY_UPSTREAM_TIMEOUT',
              `The upstream service did not answer in time (${failure.message}).${reached}${released}`,
            ),
          )
        : problemResponse(
            new OncelyError(
              'ERR_ONCELY_UPSTREAM_UNAVAILABLE',
              `The upstream service could not be reached or broke off (${failure.message}).${reached}${released}`,
            ),
          ),
    );
  } else {
    res.destroy();
  }
  return {
    outcome,
    status: res.headersSent
      ? res.statusCode
      : ERROR_CODES[timeout ? 'ERR_ONCELY_UPSTREAM_TIMEOUT' : 'ERR_ONCELY_UPSTREAM_UNAVAILABLE'].status,
    error: failure.message,
  };
}

/** A problem while nothing was sent yet; a cut connection once the head is out. */
function answerOrCut(res: ServerResponse, problem: ReturnType<typeof problemResponse>): void {
  if (!res.headersSent) writeResponse(res, problem);
  else res.destroy();
}

/** The metrics outcome of a `respond` decision. */
function respondOutcome(reason: RespondReason): Outcome {
  switch (reason) {
    case 'replayed':
      return 'replayed';
    case 'ERR_ONCELY_KEY_REUSED':
      return 'mismatch';
    case 'ERR_ONCELY_IN_PROGRESS':
      return 'conflict';
    // A replay of a key whose response was too large to keep: 409, the work ran once.
    case 'ERR_ONCELY_RESPONSE_NOT_STORED':
      return 'not_stored';
    case 'ERR_ONCELY_STORE_UNAVAILABLE':
      return 'store_unavailable';
    default:
      // Refused before the store was asked: a missing or malformed key, no tenant, an ambiguous body.
      return 'invalid';
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
