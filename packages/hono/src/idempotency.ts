/**
 * The Hono middleware: maps a web-standard `Request` into the core's HTTP layer and maps its decision
 * back out. Web APIs only (Request, Response, Headers), so it runs wherever Hono runs.
 */

import {
  bodyAllowed,
  type HttpIdempotencyOptions,
  httpIdempotency,
  OncelyError,
  webHeaderPairs,
  webResponse,
} from '@oncely/core';
import type { Context, ExecutionContext, MiddlewareHandler } from 'hono';

/** Options of {@link idempotency}: the core's HTTP and engine options, plus how to find the tenant. */
export type HonoIdempotencyOptions = HttpIdempotencyOptions & {
  /**
   * The tenant of a request (API key id, account id): a key of one tenant never replays another's
   * response. Without it every client shares one key space.
   * @default none: one shared key space
   */
  scope?: (c: Context) => string | undefined;
};

/** What a handler finds in `c.get('idempotency')` when its request is recorded. */
export interface IdempotencyVariable {
  /** Aborts when the lease on the key is lost (another request took it over): stop the work. */
  signal: AbortSignal;
  /** The parsed key (`"abc"` and `abc` are one key): derive keys for downstream calls from this. */
  key: string;
  /** sha256 of scope and key: safe to log. */
  keyHash: string;
}

/** The variables the middleware sets, for `new Hono<{ Variables: IdempotencyVariables }>()`. */
export type IdempotencyVariables = { idempotency?: IdempotencyVariable };

declare module 'hono' {
  /** Set by `@oncely/hono` for recorded requests; undefined when the request passed through. */
  interface ContextVariableMap extends IdempotencyVariables {}
}

/**
 * Idempotency-Key middleware for Hono. Mount it on the routes that create things; every instance
 * may share one store.
 * @example
 * const shared = { store: memoryStore(), scope: (c: Context) => c.req.header('x-api-key') };
 * app.use('/payments/*', idempotency(shared));
 * app.post('/orders', idempotency({ ...shared, required: true }), (c) => c.json(order, 201));
 */
export function idempotency(options: HonoIdempotencyOptions): MiddlewareHandler {
  if (options === null || typeof options !== 'object')
    throw new OncelyError('ERR_ONCELY_INVALID_OPTION', 'idempotency expects an options object');
  const { scope, ...httpOptions } = options;
  if (scope !== undefined && typeof scope !== 'function')
    throw new OncelyError('ERR_ONCELY_INVALID_OPTION', 'scope must be a function of the Hono context');
  const http = httpIdempotency(httpOptions);

  return async function oncelyIdempotency(c, next) {
    // Not covered: skip even the URL parse.
    if (!http.covers(c.req.method)) return next();
    const url = new URL(c.req.url);
    const headers = c.req.raw.headers;
    const decision = await http.handle({
      method: c.req.method,
      path: url.pathname,
      query: url.search,
      // Web Headers join repeated lines with ", ", which the core's parser refuses as a list.
      keyHeader: headers.get('idempotency-key'),
      contentType: headers.get('content-type'),
      scope: scope?.(c),
      // Hono's Node server aborts the request's signal when the client goes away.
      signal: c.req.raw.signal,
      body: () => requestBytes(c),
    });
    if (decision.kind === 'pass') return next();
    if (decision.kind === 'respond') return webResponse(decision.response, c.req.method);

    c.set('idempotency', { signal: decision.signal, key: decision.key, keyHash: decision.keyHash });
    const gone = (): void => decision.clientGone();
    c.req.raw.signal.addEventListener('abort', gone, { once: true });
    try {
      await next();
    } catch (error) {
      // Hono's compose rethrows only what is not an `Error`; free the key and let it propagate.
      await decision.abort(error);
      throw error;
    }
    // A thrown Error is caught by Hono's compose, which sets `c.error` and puts the error handler's
    // response in `c.res`: that response is not the handler's outcome, so the key is freed. A handler
    // that returned nothing is a bug Hono reports after us; leave `c.res` alone so it still does.
    if (c.error !== undefined || !c.finalized) {
      await decision.abort(c.error);
      return;
    }

    const res = c.res;
    let body: Uint8Array;
    try {
      // Reads a streamed body to its end: the whole response is what gets stored.
      body = new Uint8Array(await res.arrayBuffer());
    } catch (error) {
      await decision.abort(error);
      throw error;
    }
    // Kept before the client sees a byte, so an immediate retry always replays. Core's rule decides
    // which responses have a body (none for HEAD, 1xx, 204, 205, 304), as on every other adapter.
    const withBody = bodyAllowed(c.req.method, res.status);
    const outcome = await decision.commit({
      status: res.status,
      headers: webHeaderPairs(res.headers),
      body: withBody ? body : new Uint8Array(0),
    });
    // The store failed and the engine retries the completion in the background. Workers stop a
    // request's background work with its response unless it is handed to `waitUntil`.
    if (outcome === 'pending') keepAlive(c, http.oncely.drain());
    // The original body is consumed: send the bytes that were stored, with every original header
    // (Set-Cookie included). Unset first, or Hono's setter would merge the old headers in again.
    c.res = undefined;
    c.res = new Response(withBody ? body : null, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  };
}

/**
 * The request body as bytes, leaving it readable for the handler. A clone keeps `c.req.raw` unread for
 * handlers that pass it on (`auth.handler(c.req.raw)`); when a middleware before us already read it,
 * Hono's body cache has the bytes (the approach of Hono's own `cloneRawRequest`).
 */
async function requestBytes(c: Context): Promise<Uint8Array> {
  const buffer = c.req.raw.bodyUsed ? await c.req.arrayBuffer() : await c.req.raw.clone().arrayBuffer();
  return new Uint8Array(buffer);
}

/** Hand background work to the runtime's `waitUntil` where there is one (Workers, Deno Deploy). */
function keepAlive(c: Context, work: Promise<void>): void {
  let ctx: ExecutionContext;
  try {
    ctx = c.executionCtx;
  } catch {
    return; // No execution context (Node, Bun, Deno): the process outlives the response anyway.
  }
  ctx.waitUntil(work);
}
