/**
 * The options of `OncelyModule` and of `@Idempotent()`: the core's HTTP and engine options, plus the
 * Nest ones (where the tenant comes from, which routes are covered, the body limit). Every default
 * of the Nest options is in `NESTJS_DEFAULTS`; unknown options are refused when they are given.
 */

import type { IncomingHttpHeaders } from 'node:http';
import type { ExecutionContext } from '@nestjs/common';
import {
  type CachePolicy,
  type HttpIdempotencyOptions,
  OncelyError,
  routeOptionsProblem,
} from '@oncely/core';

/**
 * The request as the platform hands it to guards and interceptors: Express's `Request` or Fastify's
 * `FastifyRequest`, with whatever your guards set on it (`request.user`).
 */
export interface OncelyRequest {
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  readonly url: string;
  [property: string]: unknown;
}

/**
 * The tenant of a request (account id, API key id): a key of one tenant never replays another's
 * response. Called after your guards ran, so what they set on the request is there.
 */
export type IdempotencyScope = (
  request: OncelyRequest,
  context: ExecutionContext,
) => string | null | undefined;

/** Options of `OncelyModule.forRoot()`: every engine and HTTP option of `@oncely/core`, plus these. */
export interface OncelyModuleOptions extends HttpIdempotencyOptions {
  /**
   * The tenant of a request, read after the guards ran (`(request) => request.user?.accountId`).
   * Without it every client shares one key space; turn on `requireScope` with it.
   * @default none: one shared key space
   */
  scope?: IdempotencyScope;
  /**
   * Which routes are recorded: every route (`@Idempotent(false)` turns one off), or only those whose
   * handler or controller carries `@Idempotent()`.
   * @default 'all'
   */
  routes?: 'all' | 'decorated';
  /**
   * The most body bytes read from a request stream that no body parser consumed (a content type
   * without a parser, or `bodyParser: false`); a larger body is refused with 413.
   * @default 1_048_576 (1 MiB)
   */
  maxBodyBytes?: number;
}

/** Options of `@Idempotent()` on a route or controller; a route's own override its controller's. */
export interface IdempotentOptions {
  /** Refuse a covered request without a key with 400. @default the module's `required` */
  required?: boolean;
  /** Methods recorded on this route. @default the module's `methods` */
  methods?: readonly string[];
  /** How long a completed key of this route is kept for replay. @default the module's `ttlMs` */
  ttlMs?: number;
  /** Which outcomes of this route are kept for replay. @default the module's `cache` */
  cache?: CachePolicy;
  /** The tenant of this route's requests, instead of the module's `scope`. @default the module's `scope` */
  scope?: IdempotencyScope;
  /** This route's execution bound (0: unbounded). @default the module's `maxExecutionMs` */
  maxExecutionMs?: number;
  /** A duplicate that arrives while the first runs: 409 at once, or wait. @default the module's `concurrency` */
  concurrency?: 'reject' | 'wait';
  /** The largest response of this route that is stored whole. @default the module's `maxResponseBytes` */
  maxResponseBytes?: number;
}

/** The defaults of the Nest-only options; the engine's are in `DEFAULTS`, the HTTP ones in `HTTP_DEFAULTS`. */
export const NESTJS_DEFAULTS = Object.freeze({
  routes: 'all' as 'all' | 'decorated',
  maxBodyBytes: 1024 * 1024,
});

/** The module options split into what core's `httpIdempotency` takes and what the interceptor keeps. */
export interface ResolvedModuleOptions {
  http: HttpIdempotencyOptions;
  scope: IdempotencyScope | undefined;
  routes: 'all' | 'decorated';
  maxBodyBytes: number;
}

function invalid(detail: string): never {
  throw new OncelyError('ERR_ONCELY_INVALID_OPTION', detail);
}

/** Check the Nest options and split them off; the rest is checked by core when the engine is built. */
export function resolveModuleOptions(options: OncelyModuleOptions): ResolvedModuleOptions {
  if (options === null || typeof options !== 'object') invalid('OncelyModule expects an options object');
  const {
    scope,
    routes = NESTJS_DEFAULTS.routes,
    maxBodyBytes = NESTJS_DEFAULTS.maxBodyBytes,
    ...http
  } = options;
  if (scope !== undefined && typeof scope !== 'function')
    invalid('scope must be a function of the request and the execution context');
  if (routes !== 'all' && routes !== 'decorated') invalid(`routes must be 'all' or 'decorated'`);
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 0)
    invalid('maxBodyBytes must be an integer >= 0');
  return { http, scope, routes, maxBodyBytes };
}

const ROUTE_KEYS = new Set<string>([
  'required',
  'methods',
  'ttlMs',
  'cache',
  'scope',
  'maxExecutionMs',
  'concurrency',
  'maxResponseBytes',
]);

/**
 * Check `@Idempotent()`'s options where the decorator is applied, so a typo fails when the
 * controller is defined. The values the engine takes are checked again when the route's engine is
 * built, at start-up.
 */
export function checkRouteOptions(options: IdempotentOptions | false): IdempotentOptions | false {
  if (options === false) return false;
  if (options === null || typeof options !== 'object')
    invalid('@Idempotent() takes an options object, or false to turn a route off');
  for (const name of Object.keys(options)) {
    if (!ROUTE_KEYS.has(name))
      invalid(`@Idempotent(): unknown option "${name}" (one of ${[...ROUTE_KEYS].join(', ')})`);
  }
  const problem = routeOptionsProblem(options);
  if (problem) invalid(`@Idempotent(): ${problem}`);
  if (options.scope !== undefined && typeof options.scope !== 'function')
    invalid('@Idempotent(): scope must be a function of the request and the execution context');
  return Object.freeze({ ...options });
}
