/**
 * Capturing the response a handler sends: core's `captureResponse` (`@oncely/core/node`) wraps
 * `writeHead`, `write` and `end`, so `res.json`, `res.send`, `res.end(buffer)`, piped streams and
 * `res.write` chunks all arrive byte-exact. What is Express's own: telling a response its error
 * handling sent from the handler's.
 */

import type { HttpDecision } from '@oncely/core';
import { captureResponse as capture } from '@oncely/core/node';
import type { Request, Response } from 'express';

type ExecuteDecision = Extract<HttpDecision, { kind: 'execute' }>;

interface CaptureOptions {
  decision: ExecuteDecision;
  /** The engine's `maxResponseBytes`: past it no more bytes are buffered, only counted (core's recorder). */
  maxResponseBytes: number;
}

/**
 * Express gives a middleware no hook for an error a later handler throws or passes to `next(err)`.
 * Its router (2.3 and later, Express 5) records each such error in a set on the request under this
 * registered symbol, which every copy of the router shares. Where it is missing (Express 4, older
 * routers) the error handler's response is judged by the cache policy like any other response.
 */
const ROUTER_ERRORS = Symbol.for('router.tracing.publishedErrors');

/** Returns whether an error was recorded on the request after this call. */
function errorsFrom(req: Request): () => boolean {
  const recorded = (): unknown[] => {
    const errors = (req as unknown as Record<symbol, unknown>)[ROUTER_ERRORS];
    return errors instanceof Set ? [...errors] : [];
  };
  const earlier = new Set(recorded());
  return () => recorded().some((error) => !earlier.has(error));
}

/**
 * Record everything the handler sends and `commit` it before the response completes (core holds
 * the final part until the store has it, so a retry right after replays it). A response that error
 * handling sent is not the handler's outcome: the key is freed, as for a throw.
 */
export function captureResponse(req: Request, res: Response, options: CaptureOptions): void {
  const { decision, maxResponseBytes } = options;
  capture(res, { decision, maxResponseBytes, method: req.method, failed: errorsFrom(req) });
}
