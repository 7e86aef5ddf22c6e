/**
 * The interceptor: maps a Nest request into `httpIdempotency().handle` and the decision back out.
 * It runs after the guards (so the scope can come from what they set) and before the pipes and the
 * handler. The decisions (status, key parsing, fingerprints, replay headers, the disconnect policy)
 * are all made in `@oncely/core`.
 */

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { CallHandler, ExecutionContext, NestInterceptor, OnApplicationShutdown } from '@nestjs/common';
import { headerPairs } from '@oncely/core';
import { badTarget, captureResponse, requestInfo } from '@oncely/core/node';
import { catchError, from, mergeMap, type Observable, of, throwError } from 'rxjs';
import { sendDecided } from './capture.ts';
import type { OncelyRequest, ResolvedModuleOptions } from './options.ts';
import { requestBody } from './request-body.ts';
import type { Routes } from './routes.ts';

/** What a handler finds on `request.idempotency` (and `idempotencyOf(request)`) when its request is recorded. */
export interface IdempotencyContext {
  /** Aborts with `ERR_ONCELY_LEASE_LOST` when the lease on the key is lost: stop the work. */
  readonly signal: AbortSignal;
  /** The parsed key (`"abc"` and `abc` both give `abc`): derive downstream keys from it, never the raw header. */
  readonly key: string;
  /** The record id (sha256 of scope and key): safe to log. */
  readonly keyHash: string;
}

/** Set on a request once an interceptor took it in hand, so a second one leaves it alone. */
const TAKEN = Symbol.for('@oncely/nestjs.taken');

/** Express's request is Node's own; Fastify's wraps it in `raw`. */
type PlatformRequest = OncelyRequest & {
  raw?: IncomingMessage;
  originalUrl?: string;
  idempotency?: IdempotencyContext;
  [TAKEN]?: true;
};
/** Express's response is Node's own; Fastify's reply wraps it in `raw`. Both have `getHeaders()`. */
type PlatformResponse = { raw?: ServerResponse; getHeaders(): OutgoingHttpHeaders };

/**
 * The idempotency context of a recorded request, or undefined when the request passed through.
 * @example
 * @Post('payments')
 * create(@Req() request: Request) { return this.payments.charge({ signal: idempotencyOf(request)?.signal }); }
 */
export function idempotencyOf(request: object): IdempotencyContext | undefined {
  return (request as PlatformRequest).idempotency;
}

/** The interceptor `OncelyModule` registers for the whole app. */
export class OncelyInterceptor implements NestInterceptor, OnApplicationShutdown {
  readonly #routes: Routes;
  readonly #options: ResolvedModuleOptions;

  constructor(routes: Routes, options: ResolvedModuleOptions) {
    this.#routes = routes;
    this.#options = options;
  }

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle();
    const http = context.switchToHttp();
    const request = http.getRequest<PlatformRequest>();
    const response = http.getResponse<PlatformResponse>();
    if (request[TAKEN]) return next.handle();
    const route = this.#routes.of(context.getClass(), context.getHandler());
    const req = request.raw ?? (request as unknown as IncomingMessage);
    const res = response.raw ?? (response as unknown as ServerResponse);
    if (route === null || !route.http.covers(req.method ?? 'GET')) return next.handle();
    request[TAKEN] = true;

    const info = requestInfo(req, res, {
      // The target as received: Express's `originalUrl`, Fastify's `url` before any rewrite.
      target: request.originalUrl ?? req.url,
      scope: route.scope?.(request, context),
      body: () => requestBody(request, req, this.#options.maxBodyBytes),
    });
    const decision = info === undefined ? undefined : await route.http.handle(info, route.route);
    if (decision?.kind === 'pass') return next.handle();
    if (decision === undefined || decision.kind === 'respond') {
      const before = headerPairs(response.getHeaders());
      sendDecided(res, decision?.response ?? badTarget(), { before, now: route.sendsItself });
      return of(undefined);
    }
    request.idempotency = { signal: decision.signal, key: decision.key, keyHash: decision.keyHash };
    const { maxResponseBytes } = route.http.oncely.options;
    const capture = captureResponse(res, { decision, maxResponseBytes, method: req.method ?? 'POST' });
    // A thrown error (an HttpException too) is no response to keep: the key is released first, so
    // the client's retry after the error response runs again; then Nest's exception filters answer.
    return next
      .handle()
      .pipe(
        catchError((error: unknown) =>
          from(capture.fail(error)).pipe(mergeMap(() => throwError(() => error))),
        ),
      );
  }

  /** `app.close()`: wait for the commits still in flight. The store is the app's to close. */
  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.#routes.engines.map((engine) => engine.oncely.drain()));
  }
}
