/**
 * The HTTP semantics of Oncely, framework-free (DESIGN §3). An adapter maps its request in, calls
 * `handle`, and maps the decision out: it holds no status logic, no key parsing, no fingerprinting.
 */

import { isOncelyError, OncelyError, type OncelyErrorCode } from './errors.ts';
import { fingerprint as defaultFingerprint, type FingerprintInput } from './fingerprint.ts';
import { parseIdempotencyKey } from './key.ts';
import type { CommitOutcome, Oncely } from './oncely.ts';
import { createOncely } from './oncely.ts';
import type { OncelyOptions } from './options.ts';
import type { StoredResponse } from './store.ts';

/** A response as an adapter sends it: status, header pairs (lower-case names), body bytes. */
export type HttpResponse = StoredResponse;

/** Options shared by every adapter and the gateway: the engine's options plus the HTTP ones. */
export interface HttpIdempotencyOptions extends OncelyOptions {
  /** Methods that are recorded; others pass through untouched. @default ['POST', 'PATCH'] */
  methods?: readonly string[];
  /** A covered request without a key is refused with 400 instead of passing through unrecorded. @default false */
  required?: boolean;
  /** Accept only the RFC 9651 sf-string form (`"abc"`), not bare tokens. @default false */
  strictHeader?: boolean;
  /** Replace the default fingerprint (method, path, sorted query, canonical body). @default fingerprint */
  fingerprint?: (input: FingerprintInput) => string;
  /**
   * Fail closed on a missing tenant: a request with a key whose scope is missing or empty is refused
   * with `400 ERR_ONCELY_SCOPE_MISSING` instead of falling into the key space that every unscoped
   * client shares, where one tenant's key could replay another tenant's response. Turn it on
   * whenever you give a `scope`; the gateway turns it on with `scopeHeader`.
   * @default false
   */
  requireScope?: boolean;
}

/** The HTTP defaults; the engine's are in `DEFAULTS`. */
export const HTTP_DEFAULTS = Object.freeze({
  methods: Object.freeze(['POST', 'PATCH']) as readonly string[],
  required: false,
  strictHeader: false,
  fingerprint: defaultFingerprint,
  requireScope: false,
});

/** What an adapter knows about a request. `body` is read only when the request is recorded. */
export interface HttpRequestInfo {
  method: string;
  /** The path as received, without the query string. */
  path: string;
  /** Raw query string, with or without `?`. */
  query?: string | null;
  /** Every `Idempotency-Key` header line (an array when the server keeps lines apart), or undefined. */
  keyHeader: string | readonly string[] | null | undefined;
  contentType?: string | null;
  /** Tenant of the request (API key id, account). Without it all clients share one key space. */
  scope?: string | null;
  /** Aborts when the client goes away: a request waiting for a duplicate (`concurrency: 'wait'`) stops. */
  signal?: AbortSignal | undefined;
  /** The raw body bytes, or a function that reads them: called only for recorded requests. */
  body?:
    | Uint8Array
    | string
    | null
    | (() => Uint8Array | string | null | Promise<Uint8Array | string | null>);
}

/** Per-request overrides of the HTTP options (e.g. `required` on one route). */
export interface HttpRouteOptions {
  required?: boolean;
  /** This route's execution bound, overriding the engine's `maxExecutionMs` (0: unbounded). */
  maxExecutionMs?: number;
}

export type HttpDecision =
  /** Not recorded (method not covered, or no key where none is required): run the handler as usual. */
  | { kind: 'pass' }
  /** Send this response without running the handler: a replay (`replayed: true`) or a problem. */
  | {
      kind: 'respond';
      replayed: boolean;
      /** Why: `replayed`, or the code of the problem (in progress, key reused, store down …). */
      reason: RespondReason;
      /** The record id when the request got as far as the store ('' for a missing or invalid key). */
      keyHash: string;
      response: HttpResponse;
    }
  /** Run the handler; then `commit` its response before sending it, or `abort` if it threw. */
  | {
      kind: 'execute';
      /** The parsed key (`"abc"` and `abc` both give `abc`): derive downstream keys from this, not the raw header. */
      key: string;
      /** The record id (sha256 of scope and key): safe to log. */
      keyHash: string;
      /** False only when the store was down and `failOpen` let the handler run unprotected. */
      recorded: boolean;
      /** True when the key was taken over from an earlier attempt whose lease lapsed (it likely crashed). */
      takeover: boolean;
      signal: AbortSignal;
      commit(response: HttpResponse): Promise<CommitOutcome>;
      /**
       * Commit a response whose body went past `maxResponseBytes` and so was never buffered whole:
       * the outcome is kept without a body, and a retry gets `409 ERR_ONCELY_RESPONSE_NOT_STORED`.
       */
      commitTooLarge(head: Omit<HttpResponse, 'body'>): Promise<CommitOutcome>;
      abort(reason?: unknown): Promise<void>;
      /**
       * The client disconnected before its response. The one policy for every adapter: the handler
       * goes on with its lease and its outcome is committed, so the client's retry replays it.
       */
      clientGone(): void;
    };

/** The names of `HttpRouteOptions`, for adapters that read them from a route's own config. */
export const HTTP_ROUTE_KEYS: readonly (keyof HttpRouteOptions)[] = Object.freeze([
  'required',
  'maxExecutionMs',
]);

/**
 * What is wrong with a route's options, or `undefined`: the one check every adapter that takes them
 * from a route (Fastify's route config, Nest's decorator) makes when the route is registered.
 * @example
 * const problem = routeOptionsProblem(route.config.idempotency);
 */
export function routeOptionsProblem(route: { [K in keyof HttpRouteOptions]?: unknown }): string | undefined {
  if (route.required !== undefined && typeof route.required !== 'boolean')
    return 'required must be a boolean';
  const bound = route.maxExecutionMs;
  if (bound !== undefined && !(typeof bound === 'number' && Number.isSafeInteger(bound) && bound >= 0)) {
    return 'maxExecutionMs must be an integer >= 0';
  }
  return undefined;
}

/** Why a `respond` decision answers without running the handler. */
export type RespondReason = 'replayed' | OncelyErrorCode;

/** The HTTP layer returned by `httpIdempotency`. */
export interface HttpIdempotency {
  /** Decide what to do with a request. Never throws for client errors: those become `respond` decisions. */
  handle(request: HttpRequestInfo, route?: HttpRouteOptions): Promise<HttpDecision>;
  /** True when requests with this method are recorded. */
  covers(method: string): boolean;
  /** The engine underneath. */
  readonly oncely: Oncely;
}

const HTTP_KEYS = ['methods', 'required', 'strictHeader', 'fingerprint', 'requireScope'] as const;

/**
 * Build the HTTP layer that every adapter and the gateway share.
 * @example
 * const http = httpIdempotency({ store: memoryStore(), required: true });
 * const decision = await http.handle({ method: 'POST', path: '/payments', keyHeader, body: bytes });
 */
export function httpIdempotency(options: HttpIdempotencyOptions): HttpIdempotency {
  const engineOptions: Record<string, unknown> = { ...options };
  for (const key of HTTP_KEYS) delete engineOptions[key];
  const oncely = createOncely(engineOptions as unknown as OncelyOptions);
  const methods = new Set((options.methods ?? HTTP_DEFAULTS.methods).map((m) => m.toUpperCase()));
  if (methods.size === 0)
    throw new OncelyError('ERR_ONCELY_INVALID_OPTION', 'methods must name at least one method');
  const required = options.required ?? HTTP_DEFAULTS.required;
  const strict = options.strictHeader ?? HTTP_DEFAULTS.strictHeader;
  const fingerprintOf = options.fingerprint ?? HTTP_DEFAULTS.fingerprint;
  if (typeof fingerprintOf !== 'function')
    throw new OncelyError('ERR_ONCELY_INVALID_OPTION', 'fingerprint must be a function');
  const requireScope = options.requireScope ?? HTTP_DEFAULTS.requireScope;
  if (typeof requireScope !== 'boolean')
    throw new OncelyError('ERR_ONCELY_INVALID_OPTION', 'requireScope must be a boolean');

  const covers = (method: string): boolean => methods.has(method.toUpperCase());
  // The engine keeps a response without its body when the body is over the limit; only the length
  // counts, so one placeholder of limit + 1 bytes, made once, stands in for every such body.
  let tooLarge: Uint8Array | undefined;
  const tooLargeBody = (): Uint8Array => {
    tooLarge ??= new Uint8Array(oncely.options.maxResponseBytes + 1);
    return tooLarge;
  };

  async function handle(request: HttpRequestInfo, route: HttpRouteOptions = {}): Promise<HttpDecision> {
    if (!covers(request.method)) return { kind: 'pass' };
    const parsed = parseIdempotencyKey(request.keyHeader, { strict });
    if (!parsed.ok) {
      if (parsed.reason === 'missing') {
        if (!(route.required ?? required)) return { kind: 'pass' };
        return problem(
          new OncelyError('ERR_ONCELY_KEY_MISSING', 'This request requires an Idempotency-Key header.'),
        );
      }
      return problem(new OncelyError('ERR_ONCELY_KEY_INVALID', parsed.detail));
    }
    const scope = request.scope ?? '';
    if (requireScope && scope === '') {
      return problem(
        new OncelyError(
          'ERR_ONCELY_SCOPE_MISSING',
          'The server could not tell which account sent this request, so it cannot keep its Idempotency-Key apart from other accounts. Nothing was run; send your credentials.',
        ),
      );
    }
    const body = typeof request.body === 'function' ? await request.body() : request.body;
    let fingerprint: string;
    try {
      fingerprint = fingerprintOf({
        method: request.method,
        path: request.path,
        query: request.query ?? '',
        body: body ?? null,
        contentType: request.contentType ?? null,
      });
    } catch (error) {
      // A body the fingerprint refuses (duplicate JSON member names) is the client's to fix: a 400
      // before anything runs or is recorded. Any other failure is the server's and propagates.
      if (isOncelyError(error)) return problem(error);
      throw error;
    }
    const decision = await oncely.begin({
      scope,
      key: parsed.key,
      fingerprint,
      signal: request.signal,
      maxExecutionMs: route.maxExecutionMs,
    });
    switch (decision.kind) {
      case 'reject':
        return problem(decision.error, decision.keyHash);
      case 'replay':
        return {
          kind: 'respond',
          replayed: true,
          reason: 'replayed',
          keyHash: decision.keyHash,
          response: replayResponse(decision.response),
        };
      case 'execute':
        return {
          kind: 'execute',
          key: parsed.key,
          keyHash: decision.keyHash,
          recorded: decision.recorded,
          takeover: decision.takeover,
          signal: decision.signal,
          commit: (response) => decision.commit(storableResponse(response)),
          commitTooLarge: (head) => decision.commit(storableResponse({ ...head, body: tooLargeBody() })),
          abort: (reason) => decision.abort(reason),
          clientGone: () => decision.clientGone(),
        };
    }
  }

  return { handle, covers, oncely };
}

function problem(error: OncelyError, keyHash = ''): HttpDecision {
  return { kind: 'respond', replayed: false, reason: error.code, keyHash, response: problemResponse(error) };
}

/**
 * The RFC 9457 `application/problem+json` response for an error, with `Retry-After` where it applies.
 * @example
 * const { status, headers, body } = problemResponse(new OncelyError('ERR_ONCELY_KEY_MISSING', '...'));
 */
export function problemResponse(error: OncelyError): HttpResponse {
  return problemJson(error.toProblem(), error.retryAfter);
}

/**
 * A problem without an Oncely code (`type: about:blank`, RFC 9457 §4.2.1), for plain HTTP errors
 * such as an unknown admin path.
 * @example
 * plainProblem(404, 'Not Found', 'The gateway serves /_oncely/healthz and /_oncely/metrics.');
 */
export function plainProblem(status: number, title: string, detail: string): HttpResponse {
  return problemJson({ type: 'about:blank', title, status, detail });
}

function problemJson(
  problem: { type: string; title: string; status: number; detail: string },
  retryAfter?: number,
): HttpResponse {
  const headers: Array<[string, string]> = [
    ['content-type', 'application/problem+json'],
    ['cache-control', 'no-store'],
  ];
  if (retryAfter !== undefined) headers.push(['retry-after', String(retryAfter)]);
  return { status: problem.status, headers, body: utf8.encode(JSON.stringify(problem)) };
}

const utf8 = new TextEncoder();

/** Hop-by-hop fields (RFC 9110 §7.6.1): they describe one connection and never cross a hop. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The lower-case field names that `Connection` headers among `headers` declare hop-by-hop. */
export function connectionOptions(headers: Iterable<readonly [string, string]>): Set<string> {
  const named = new Set<string>();
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== 'connection') continue;
    for (const token of value.split(',')) {
      const field = token.trim().toLowerCase();
      if (field !== '') named.add(field);
    }
  }
  return named;
}

/**
 * Headers never stored or replayed: hop-by-hop fields, framing that the replaying server recomputes
 * (`content-length`), per-response values (`date`), and `set-cookie`, which would hand one response's
 * session to whoever retries with the key.
 */
const UNSTORED = new Set([...HOP_BY_HOP, 'content-length', 'date', 'set-cookie', 'idempotent-replayed']);

/** The part of a response that is kept: lower-case header names, minus the ones never replayed. */
export function storableResponse(response: HttpResponse): StoredResponse {
  const connectionTokens = connectionOptions(response.headers);
  const headers: Array<[string, string]> = [];
  for (const [name, value] of response.headers) {
    const lower = name.toLowerCase();
    if (UNSTORED.has(lower) || connectionTokens.has(lower)) continue;
    headers.push([lower, value]);
  }
  return { status: response.status, headers, body: response.body };
}

/** A stored response as replayed: the same status, headers and bytes, plus `Idempotent-Replayed: true`. */
export function replayResponse(stored: StoredResponse): HttpResponse {
  return {
    status: stored.status,
    headers: [...stored.headers, ['idempotent-replayed', 'true']],
    body: stored.body,
  };
}
