/**
 * What the interceptor needs to know about each route, worked out once per handler: whether it is
 * recorded, with which engine (the module's, or one of its own when `@Idempotent()` changes the
 * methods, retention, cache policy, concurrency or response limit), and whether the handler sends
 * its response itself through `@Res()`.
 */

// Where Nest's own decorators keep what they declare: Nest reads them from the same places.
import {
  PATH_METADATA,
  RESPONSE_PASSTHROUGH_METADATA,
  ROUTE_ARGS_METADATA,
} from '@nestjs/common/constants.js';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum.js';
import type { ModulesContainer, Reflector } from '@nestjs/core';
import { type HttpIdempotency, type HttpRouteOptions, httpIdempotency } from '@oncely/core';
import { IDEMPOTENT_METADATA } from './idempotent.ts';
import type { IdempotencyScope, IdempotentOptions, ResolvedModuleOptions } from './options.ts';

/** How one route is recorded. */
export interface RouteSettings {
  http: HttpIdempotency;
  route: HttpRouteOptions;
  scope: IdempotencyScope | undefined;
  /** The handler takes `@Res()` without `passthrough`: Nest sends nothing for it. */
  sendsItself: boolean;
}

// The route handlers are methods, as Nest hands them out in `context.getHandler()`.
// biome-ignore lint/complexity/noBannedTypes: any function is a possible handler
type Handler = Function;
type Mark = IdempotentOptions | false | undefined;

const getMetadata = (key: string, target: object, property?: string): unknown =>
  (Reflect as unknown as { getMetadata(k: string, t: object, p?: string): unknown }).getMetadata(
    key,
    target,
    property,
  );

/** The route table: a route's settings are computed on first use, and for every controller at start-up. */
export class Routes {
  readonly #options: ResolvedModuleOptions;
  readonly #reflector: Reflector;
  readonly #base: HttpIdempotency;
  readonly #engines = new Set<HttpIdempotency>();
  readonly #settings = new WeakMap<Handler, RouteSettings | null>();

  constructor(options: ResolvedModuleOptions, reflector: Reflector) {
    this.#options = options;
    this.#reflector = reflector;
    this.#base = httpIdempotency(options.http);
    this.#engines.add(this.#base);
  }

  /** Every engine in use, to drain when the app closes. */
  get engines(): readonly HttpIdempotency[] {
    return [...this.#engines];
  }

  /**
   * Work out every route of every controller now, so that an `@Idempotent()` the engine refuses
   * (a `ttlMs` shorter than the lease, an unknown cache policy) stops the app at start-up.
   */
  prepare(modules: ModulesContainer, methodNames: (prototype: object) => string[]): void {
    for (const module of modules.values()) {
      for (const wrapper of module.controllers.values()) {
        const controller = wrapper.metatype as { prototype?: Record<string, unknown> } | null;
        const prototype = controller?.prototype;
        if (!prototype) continue;
        for (const name of methodNames(prototype)) {
          const handler = prototype[name];
          if (typeof handler === 'function' && getMetadata(PATH_METADATA, handler) !== undefined) {
            this.of(controller as Handler, handler, name);
          }
        }
      }
    }
  }

  /** The settings of a route, or null when it is not recorded. */
  of(controller: Handler, handler: Handler, name = handler.name): RouteSettings | null {
    let settings = this.#settings.get(handler);
    if (settings === undefined) {
      settings = this.#resolve(controller, handler, name);
      this.#settings.set(handler, settings);
    }
    return settings;
  }

  #resolve(controller: Handler, handler: Handler, name: string): RouteSettings | null {
    const own = this.#reflector.get<Mark>(IDEMPOTENT_METADATA, handler);
    const inherited = this.#reflector.get<Mark>(IDEMPOTENT_METADATA, controller);
    if (own === false || (own === undefined && inherited === false)) return null;
    if (own === undefined && inherited === undefined && this.#options.routes === 'decorated') return null;
    // A route's own settings over its controller's.
    const { required, maxExecutionMs, scope, ...engine } = { ...(inherited || {}), ...(own || {}) };
    let http = this.#base;
    if (Object.keys(engine).length > 0) {
      http = httpIdempotency({ ...this.#options.http, ...engine });
      this.#engines.add(http);
    }
    const route: HttpRouteOptions = {};
    if (required !== undefined) route.required = required;
    if (maxExecutionMs !== undefined) route.maxExecutionMs = maxExecutionMs;
    return { http, route, scope: scope ?? this.#options.scope, sendsItself: sendsItself(controller, name) };
  }
}

/** Whether Nest leaves the response to the handler: it takes `@Res()` or `@Next()`, without passthrough. */
function sendsItself(controller: Handler, name: string): boolean {
  const args = (getMetadata(ROUTE_ARGS_METADATA, controller, name) ?? {}) as Record<string, unknown>;
  const takesResponse = Object.keys(args).some(
    (key) => key.startsWith(`${RouteParamtypes.RESPONSE}:`) || key.startsWith(`${RouteParamtypes.NEXT}:`),
  );
  return takesResponse && getMetadata(RESPONSE_PASSTHROUGH_METADATA, controller, name) !== true;
}
