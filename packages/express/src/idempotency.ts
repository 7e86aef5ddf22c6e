/**
 * The Express middleware: maps an Express request into the core's HTTP layer and maps its decision
 * back out. Works with Express 5 and 4 (the same middleware signature; errors are passed to `next`).
 */

import { type HttpIdempotencyOptions, httpIdempotency, OncelyError } from '@oncely/core';
import { badTarget, requestInfo, writeResponse } from '@oncely/core/node';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { captureResponse } from './capture.ts';
import { requestBody } from './request-body.ts';

/** Options of {@link idempotency}: the core's HTTP and engine options, plus the Express ones. */
export type ExpressIdempotencyOptions = HttpIdempotencyOptions & {
  /**
   * The tenant of a request (API key id, account id): a key of one tenant never replays another's
   * response. Without it every client shares one key space.
   * @default none: one shared key space
   */
  scope?: (req: Request) => string | undefined;
  /**
   * The most request body bytes the middleware buffers itself when no body parser has read the body
   * before it; a larger body is refused with 413 (passed to `next`, like a body parser's limit).
   * @default 1_048_576 (1 MiB)
   */
  maxBodyBytes?: number;
};

/** The defaults of the Express-only options; the engine's are in `DEFAULTS`, the HTTP ones in `HTTP_DEFAULTS`. */
export const EXPRESS_DEFAULTS = Object.freeze({ maxBodyBytes: 1024 * 1024 });

/** What a handler finds in `req.idempotency` when its request is recorded. */
export interface IdempotencyContext {
  /** Aborts with `ERR_ONCELY_LEASE_LOST` when the lease on the key is lost: stop the work. */
  readonly signal: AbortSignal;
  /** The parsed key (`"abc"` and `abc` both give `abc`): derive downstream keys from it, never the raw header. */
  readonly key: string;
  /** The record id (sha256 of scope and key): safe to log. */
  readonly keyHash: string;
}

declare global {
  namespace Express {
    interface Request {
      /** Set by `@oncely/express` for recorded requests; undefined when the request passed through. */
      idempotency?: IdempotencyContext;
    }
  }
}

/**
 * Idempotency-Key middleware for Express. Mount it after your body parser, globally or on the routes
 * that create things; several instances may share one store.
 * @example
 * const shared = { store: sqliteStore({ database: './oncely.db' }), scope: (req: Request) => req.get('x-api-key') };
 * app.use(express.json(), idempotency(shared));
 * app.post('/orders', idempotency({ ...shared, required: true }), (req, res) => res.status(201).json(order));
 */
export function idempotency(options: ExpressIdempotencyOptions): RequestHandler {
  if (options === null || typeof options !== 'object')
    throw new OncelyError('ERR_ONCELY_INVALID_OPTION', 'idempotency expects an options object');
  const { scope, maxBodyBytes = EXPRESS_DEFAULTS.maxBodyBytes, ...httpOptions } = options;
  if (scope !== undefined && typeof scope !== 'function')
    throw new OncelyError('ERR_ONCELY_INVALID_OPTION', 'scope must be a function of the request');
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 0)
    throw new OncelyError('ERR_ONCELY_INVALID_OPTION', 'maxBodyBytes must be an integer >= 0');
  const http = httpIdempotency(httpOptions);
  const { maxResponseBytes } = http.oncely.options;

  async function handle(req: Request, res: Response, next: NextFunction): Promise<void> {
    // Not covered, or another instance already records this request (a global and a per-route mount).
    if (!http.covers(req.method) || req.idempotency !== undefined) return next();
    const info = requestInfo(req, res, {
      // The target as received, whatever the mount point: `req.url` is relative to it.
      target: req.originalUrl,
      scope: scope?.(req),
      body: () => requestBody(req, maxBodyBytes),
    });
    if (info === undefined) return writeResponse(res, badTarget());
    const decision = await http.handle(info);
    if (decision.kind === 'pass') return next();
    if (decision.kind === 'respond') return writeResponse(res, decision.response);
    req.idempotency = { signal: decision.signal, key: decision.key, keyHash: decision.keyHash };
    captureResponse(req, res, { decision, maxResponseBytes });
    next();
  }

  return function oncelyIdempotency(req, res, next) {
    // Express 4 ignores a rejected promise: hand every failure (store, scope, body) to `next` ourselves.
    handle(req, res, next).catch(next);
  };
}
