/**
 * The gateway: a node:http server in front of any HTTP service. Requests it does not record stream
 * through untouched; recorded ones are buffered, decided by core's HTTP layer (`httpIdempotency`:
 * key parsing, fingerprint, every status), forwarded with their `Idempotency-Key`, and the upstream's
 * response is kept before the client sees it. The gateway only translates, as every adapter does.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ERROR_CODES,
  type HttpDecision,
  type HttpIdempotency,
  type HttpIdempotencyOptions,
  httpIdempotency,
  isOncelyError,
  OncelyError,
  type OncelyEvent,
  plainProblem,
  problemResponse,
  type RespondReason,
} from '@oncely/core';
import { clientSignal } from '@oncely/core/node';
import { adminEndpoints } from './admin.ts';
import { clientResponseHeaders, pairsOf, RELEASE_HEADER, upstreamRequestHeaders } from './forward-headers.ts';
import { type CommitResult, GatewayMetrics, type Outcome } from './metrics.ts';
import { BodyTooLargeError, RequestAbortedError, readBody } from './request-body.ts';
import { scopeOf } from './scope.ts';
import { concat, send, write, writeHead } from './send-response.ts';
import { timedStore } from './timed-store.ts';
import { formatDuration, formatSize } from './units.ts';
import {
  type Exchange,
  exchange,
  type UpstreamError,
  type UpstreamTarget,
  upstreamTarget,
} from './upstream.ts';

/** One structured log entry. The gateway never puts a raw key, a scope value or a body in one. */
export interface GatewayLogEntry {
  level: 'info' | 'warn' | 'error';
  /** `request` (one per request the idempotency layer decided, or that failed upstream), `store_error`, `lease_lost`, `execution_timeout`, `error`. */
  msg: string;
  outcome?: Outcome;
  method?: string;
  /** The request path without its query string (a query may carry secrets). */
  path?: string;
  status?: number;
  durationMs?: number;
  /** The record id: sha256 of scope and key. Safe to log; find it with `oncely keys show`. */
  keyHash?: string;
  commit?: CommitResult;
  takeover?: boolean;
  leaseLost?: boolean;
  operation?: string;
  error?: string;
}

/** Options of {@link createGateway}: core's HTTP and engine options, plus the proxy's own. */
export interface GatewayOptions extends Omit<HttpIdempotencyOptions, 'required'> {
  /** Base URL of the service behind the gateway; a path is prepended to every request. */
  upstream: string | URL;
  /**
   * Header naming the tenant (an API key, an account id). Its value is hashed into the scope, so a
   * key of one tenant never replays another's response. A keyed request without it is refused with
   * `400 ERR_ONCELY_SCOPE_MISSING` (see `requireScope`).
   * @default none: every client shares one key space
   */
  scopeHeader?: string | undefined;
  /**
   * Refuse a keyed request without the scope header instead of putting it in the key space that
   * every unscoped client shares.
   * @default true when `scopeHeader` is set
   */
  requireScope?: boolean;
  /**
   * The longest one recorded request may hold its key; past it the upstream call is cut, the client
   * gets 504 and the key frees when its lease lapses. Follows `upstreamTimeoutMs`, a second past it,
   * so an upstream that goes silent meets its own timeout first (504, key released at once) and the
   * bound only ends a response that keeps trickling in.
   * @default upstreamTimeoutMs + 1_000
   */
  maxExecutionMs?: number;
  /** A covered request without a key gets 400 instead of passing through; a function decides per request. @default false */
  required?: boolean | ((request: { method: string; path: string }) => boolean);
  /** Largest recorded request body; a larger one gets 413 before the store or the upstream see it. @default 1_048_576 */
  maxBodyBytes?: number;
  /** Longest silence from the upstream (before its head or between chunks) before a 504. @default 60_000 */
  upstreamTimeoutMs?: number;
  /**
   * How long a kept-alive connection to the upstream may sit idle before the gateway closes it (or
   * sooner, when the upstream announces a shorter `Keep-Alive: timeout`). Keep it below the
   * upstream's own idle timeout: an upstream that closes an idle connection just as a request goes
   * out on it fails that request, and only a bodyless GET, HEAD or OPTIONS is then sent again.
   * @default 4_000 (below the 5 s of Node's http server, Apache and uvicorn)
   */
  upstreamIdleTimeoutMs?: number;
  /** Prefix of the gateway's own paths, `<prefix>/healthz` and `<prefix>/metrics`; '' serves them at the root. @default '/_oncely' */
  adminPrefix?: string;
  /** How long `/healthz` waits for the store before answering 503. @default 2_000 */
  healthTimeoutMs?: number;
  /** Where log entries go; the CLI prints them as JSON lines. @default none */
  log?: ((entry: GatewayLogEntry) => void) | undefined;
}

/** The defaults of the gateway's own options; the engine's are in core's `DEFAULTS`, the HTTP ones in `HTTP_DEFAULTS`. */
export const GATEWAY_DEFAULTS = Object.freeze({
  scopeHeader: undefined,
  required: false,
  maxBodyBytes: 1024 * 1024,
  upstreamTimeoutMs: 60_000,
  upstreamIdleTimeoutMs: 4_000,
  adminPrefix: '/_oncely',
  healthTimeoutMs: 2_000,
});

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

const GATEWAY_KEYS = [
  'upstream',
  'scopeHeader',
  'required',
  'maxBodyBytes',
  'upstreamTimeoutMs',
  'upstreamIdleTimeoutMs',
  'adminPrefix',
  'healthTimeoutMs',
  'log',
] as const;

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function invalid(detail: string): never {
  throw new OncelyError('ERR_ONCELY_INVALID_OPTION', `createGateway: ${detail}`);
}

function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) invalid(`${name} must be an integer >= 0, got ${value}`);
  return value;
}

/**
 * Create the gateway. Options are checked at once: an unknown or invalid one throws
 * `ERR_ONCELY_INVALID_OPTION`.
 * @example
 * const gateway = createGateway({ upstream: 'http://127.0.0.1:3000', store: sqliteStore({ database: './oncely.db' }) });
 * console.log(`listening on ${await gateway.listen({ port: 8080 })}`);
 */
export function createGateway(options: GatewayOptions): Gateway {
  if (options === null || typeof options !== 'object') invalid('expects an options object');
  const engineOptions: Record<string, unknown> = { ...options };
  for (const key of GATEWAY_KEYS) delete engineOptions[key];

  const upstreamIdleTimeoutMs = nonNegativeInteger(
    'upstreamIdleTimeoutMs',
    options.upstreamIdleTimeoutMs ?? GATEWAY_DEFAULTS.upstreamIdleTimeoutMs,
  );
  // 0 would keep idle connections open forever: the race the option exists to avoid.
  if (upstreamIdleTimeoutMs === 0) invalid('upstreamIdleTimeoutMs must be at least 1');
  let target: UpstreamTarget;
  try {
    target = upstreamTarget(options.upstream, { idleTimeoutMs: upstreamIdleTimeoutMs });
  } catch (error) {
    invalid((error as Error).message);
  }
  const scopeHeader = options.scopeHeader?.toLowerCase();
  if (scopeHeader !== undefined && (!HEADER_NAME.test(scopeHeader) || scopeHeader === 'idempotency-key')) {
    invalid(`scopeHeader must be a header name other than Idempotency-Key, got "${options.scopeHeader}"`);
  }
  const required = options.required ?? GATEWAY_DEFAULTS.required;
  if (typeof required !== 'boolean' && typeof required !== 'function') {
    invalid('required must be a boolean or a function of { method, path }');
  }
  const maxBodyBytes = nonNegativeInteger(
    'maxBodyBytes',
    options.maxBodyBytes ?? GATEWAY_DEFAULTS.maxBodyBytes,
  );
  const upstreamTimeoutMs = nonNegativeInteger(
    'upstreamTimeoutMs',
    options.upstreamTimeoutMs ?? GATEWAY_DEFAULTS.upstreamTimeoutMs,
  );
  if (upstreamTimeoutMs === 0) invalid('upstreamTimeoutMs must be at least 1');
  const healthTimeoutMs = nonNegativeInteger(
    'healthTimeoutMs',
    options.healthTimeoutMs ?? GATEWAY_DEFAULTS.healthTimeoutMs,
  );
  const adminPrefix = (options.adminPrefix ?? GATEWAY_DEFAULTS.adminPrefix).replace(/\/+$/, '');
  if (adminPrefix !== '' && (!adminPrefix.startsWith('/') || /[?#\s]/.test(adminPrefix))) {
    invalid(`adminPrefix must be a path such as /_oncely, got "${options.adminPrefix}"`);
  }
  const log = options.log ?? ((): void => {});
  if (typeof log !== 'function') invalid('log must be a function');

  const metrics = new GatewayMetrics();
  const userOnEvent = options.onEvent;
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
  if (options.store === null || typeof options.store !== 'object') invalid('store is required');
  const store = timedStore(options.store, (operation, seconds, failed) =>
    metrics.storeCall(operation, seconds, failed),
  );
  const http: HttpIdempotency = httpIdempotency({
    ...(engineOptions as unknown as HttpIdempotencyOptions),
    requireScope: options.requireScope ?? scopeHeader !== undefined,
    maxExecutionMs: options.maxExecutionMs ?? upstreamTimeoutMs + 1000,
    store,
    onEvent,
  });
  const { maxResponseBytes, clock } = http.oncely.options;

  // Health checks go through the timed store: their `get` is the store latency a probe sees.
  const admin = adminEndpoints({ prefix: adminPrefix, metrics, store, clock, healthTimeoutMs });
  const server = createServer();
  const inFlight = new Set<Promise<void>>();
  let closing = false;
  let closed: Promise<void> | undefined;

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    metrics.requestsInFlight++;
    // A new request on a kept-alive connection during shutdown is served, and its connection closed.
    if (closing) res.setHeader('connection', 'close');
    const closedRes = new Promise<void>((resolve) => res.once('close', resolve));
    const handled = route(req, res).catch((error: unknown) => {
      log({ level: 'error', msg: 'error', error: messageOf(error) });
      if (!res.headersSent) send(res, plainProblem(500, 'Internal Server Error', 'The gateway failed.'));
      else res.destroy();
    });
    const done = Promise.all([handled, closedRes]).then(() => {
      metrics.requestsInFlight--;
      inFlight.delete(done);
      if (closing) server.closeIdleConnections();
    });
    inFlight.add(done);
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const pathAndQuery = requestTarget(req.url ?? '/');
    if (pathAndQuery === null) {
      send(
        res,
        plainProblem(400, 'Bad Request', 'The request target is neither a path nor an absolute URL.'),
      );
      return;
    }
    const queryAt = pathAndQuery.indexOf('?');
    const path = queryAt === -1 ? pathAndQuery : pathAndQuery.slice(0, queryAt);
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
      log({
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
    if (!http.covers(method)) {
      finish(await passthrough(req, res, pathAndQuery));
      return;
    }

    {
      let body: Uint8Array | undefined;
      let decision: HttpDecision;
      try {
        const scopeValue = scopeHeader === undefined ? undefined : req.headers[scopeHeader];
        decision = await http.handle(
          {
            method,
            path,
            query: queryAt === -1 ? '' : pathAndQuery.slice(queryAt),
            // Every line apart, so two `Idempotency-Key` lines are refused rather than joined.
            keyHeader: req.headersDistinct['idempotency-key'],
            contentType: req.headers['content-type'],
            scope: typeof scopeValue === 'string' ? scopeOf(scopeValue) : '',
            signal: clientSignal(res),
            body: async () => {
              body = await readBody(req, maxBodyBytes);
              return body;
            },
          },
          { required: typeof required === 'function' ? required({ method, path }) : required },
        );
      } catch (error) {
        if (error instanceof BodyTooLargeError) {
          // The rest of the upload is read and dropped (readBody left the stream flowing), and the
          // connection closed after the answer: it is not worth keeping for a client this far over.
          res.setHeader('connection', 'close');
          const problem = problemResponse(
            new OncelyError(
              'ERR_ONCELY_BODY_TOO_LARGE',
              `Requests with an Idempotency-Key may carry at most ${formatSize(maxBodyBytes)}; nothing was run.`,
            ),
          );
          send(res, problem);
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
          finish(await passthrough(req, res, pathAndQuery));
          return;
        case 'respond':
          if (decision.keyHash !== '') seen.keyHash = decision.keyHash;
          send(res, decision.response);
          finish({ outcome: respondOutcome(decision.reason), status: decision.response.status });
          return;
        case 'execute':
          seen.keyHash = decision.keyHash;
          seen.takeover = decision.takeover;
          finish(await execute(req, res, decision, body ?? new Uint8Array(0), pathAndQuery));
          return;
      }
    }
  }

  /** Stream a request through, both ways, without looking at its body. */
  async function passthrough(req: IncomingMessage, res: ServerResponse, path: string): Promise<Result> {
    // Sent again only when a kept-alive connection turned out dead before any response, and only a
    // bodyless GET, HEAD or OPTIONS. A dead connection does not prove the upstream never read the
    // request: one that acted on it and then dropped the connection (a worker killed mid-request)
    // looks the same, and RFC 9110 §9.2.2 leaves repeating a request that is not idempotent to the
    // client. PUT and DELETE are idempotent by definition, but whether the upstream honours that, and
    // what a repeat answers (a 404 for the first DELETE's 204), the gateway cannot know. A streamed
    // body is gone once sent anyway.
    const method = req.method ?? 'GET';
    const bodyless =
      req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] ?? '0') === '0';
    const repeatable = bodyless && (method === 'GET' || method === 'HEAD' || method === 'OPTIONS');
    const forward = (): Exchange => {
      const sent = exchange(target, {
        method,
        path,
        headers: upstreamRequestHeaders(req, { upstreamHost: target.host }),
        timeoutMs: upstreamTimeoutMs,
      });
      if (bodyless) sent.request.end();
      else req.pipe(sent.request);
      return sent;
    };
    let upstream = forward();
    // A client that goes away cancels what it asked for: nothing here is recorded.
    res.once('close', () => {
      if (!res.writableFinished) upstream.request.destroy();
    });
    let response: IncomingMessage;
    try {
      response = await upstream.response.catch((error: unknown) => {
        if (!repeatable || !upstream.stale(error)) throw error;
        upstream = forward();
        return upstream.response;
      });
    } catch (error) {
      return upstreamFailed(res, upstream.failure(error), false);
    }
    res.writeHead(
      response.statusCode ?? 502,
      response.statusMessage,
      clientResponseHeaders(pairsOf(response.rawHeaders), true).flat(),
    );
    await new Promise<void>((resolve) => {
      response.pipe(res);
      // Cut off mid-body: the client sees the same broken response the upstream sent.
      response.once('error', () => {
        res.destroy();
        resolve();
      });
      res.once('close', () => {
        if (!response.complete) response.destroy();
        resolve();
      });
    });
    return { outcome: 'passthrough', status: response.statusCode ?? 502 };
  }

  /**
   * Run a recorded request upstream and settle its key. The response is buffered up to
   * `maxResponseBytes` and kept before the client gets any of it. A larger one is streamed to the
   * client as it comes (the engine keeps the outcome without its body), with its last chunk held until
   * the store has the outcome, so a retry after the response ended never runs it again.
   */
  async function execute(
    req: IncomingMessage,
    res: ServerResponse,
    decision: Execute,
    body: Uint8Array,
    path: string,
  ): Promise<Result> {
    metrics.leasesInFlight++;
    let cut: (() => void) | undefined;
    try {
      // Not cancelled when the client goes away: the upstream's work goes on (most servers do not stop
      // a handler whose client left) and its outcome is kept for the retry. Cancelled when the lease
      // is lost (below): another request owns the key and runs the call again.
      // Sent once, never again on our own, not even when a kept-alive connection turns out dead
      // before any response: the upstream may have acted on it before the connection went (RFC 9110
      // §9.2.2). The failure releases the key and the client retries with it; the upstream got the
      // Idempotency-Key with this attempt, so an upstream that dedupes answers the retry from it.
      const upstream = exchange(target, {
        method: req.method ?? 'POST',
        path,
        headers: upstreamRequestHeaders(req, { upstreamHost: target.host, contentLength: body.byteLength }),
        timeoutMs: upstreamTimeoutMs,
      });
      upstream.request.end(body);
      // Core's one disconnect policy: the call goes on, its outcome is kept for the client's retry.
      res.once('close', () => {
        if (!res.writableFinished) decision.clientGone();
      });
      // A lost lease means a retry took the key over and is running the upstream call again. Cut this
      // call: closing the connection is the HTTP form of aborting the handler's signal, and an
      // upstream that watches for its client leaving can stop. The client hears that the lease was
      // lost; its retry finds the new owner's outcome.
      cut = (): void => void upstream.request.destroy(new Error('the lease on the key was lost'));
      decision.signal.addEventListener('abort', cut, { once: true });
      let response: IncomingMessage;
      try {
        response = await upstream.response;
      } catch (error) {
        if (decision.signal.aborted) return leaseLost(res, decision);
        const failure = upstream.failure(error);
        await decision.abort(failure);
        return upstreamFailed(res, failure, true);
      }

      const status = response.statusCode ?? 502;
      const pairs = pairsOf(response.rawHeaders);
      const release = response.headers[RELEASE_HEADER] !== undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      let streaming = false;
      let held: Buffer | undefined;
      try {
        for await (const chunk of response as AsyncIterable<Buffer>) {
          size += chunk.byteLength;
          if (!streaming && size <= maxResponseBytes) {
            chunks.push(chunk);
            continue;
          }
          if (!streaming) {
            streaming = true;
            writeHead(res, status, response.statusMessage, pairs);
            for (const buffered of chunks) await write(res, buffered);
            chunks.length = 0;
          }
          if (held) await write(res, held);
          held = chunk;
        }
      } catch (error) {
        if (decision.signal.aborted) return leaseLost(res, decision);
        const failure = upstream.failure(error);
        await decision.abort(failure);
        // Streaming, the head is out: the client gets the same broken response (upstreamFailed).
        return upstreamFailed(res, failure, true);
      }

      const whole = streaming ? undefined : concat(chunks, size);
      let commit: CommitResult;
      if (release) {
        await decision.abort(new Error(`the upstream sent ${RELEASE_HEADER}`));
        commit = 'released';
      } else {
        commit =
          whole === undefined
            ? await decision.commitTooLarge({ status, headers: pairs })
            : await decision.commit({ status, headers: pairs, body: whole });
      }
      metrics.commit(commit);
      if (!res.destroyed) {
        if (whole === undefined) {
          res.end(held);
        } else {
          writeHead(res, status, response.statusMessage, pairs);
          res.end(whole);
        }
      }
      return { outcome: 'executed', status, commit };
    } finally {
      if (cut) decision.signal.removeEventListener('abort', cut);
      metrics.leasesInFlight--;
    }
  }

  /** The upstream call was cut because the lease was lost: nothing to keep or release (not ours). */
  function leaseLost(res: ServerResponse, decision: Execute): Result {
    const error = isOncelyError(decision.signal.reason)
      ? decision.signal.reason
      : new OncelyError('ERR_ONCELY_LEASE_LOST', 'The lease on this key was lost.');
    if (error.code === 'ERR_ONCELY_EXECUTION_TIMEOUT') {
      // The execution bound is the upstream timeout: the same 504 as an upstream that went silent,
      // except that the key is not released at once but frees when its lease lapses.
      const problem = problemResponse(
        new OncelyError(
          'ERR_ONCELY_UPSTREAM_TIMEOUT',
          `The upstream service did not finish in time; the call was cut. The Idempotency-Key frees within one lease (${formatDuration(http.oncely.options.leaseMs)}): retry with it then.`,
        ),
      );
      if (!res.headersSent) send(res, problem);
      else res.destroy();
      return { outcome: 'upstream_timeout', status: problem.status, commit: 'timed_out' };
    }
    if (!res.headersSent) send(res, problemResponse(error));
    else res.destroy();
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
      send(
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

/** Origin-form targets as they are; an absolute-form one (`http://host/path`) as its path and query. */
function requestTarget(url: string): string | null {
  if (url.startsWith('/')) return url;
  try {
    const parsed = new URL(url);
    return `${parsed.pathname}${parsed.search}`;
  } catch {
    return null;
  }
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
