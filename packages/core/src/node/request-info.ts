/**
 * What the core's HTTP layer needs to know about a `node:http` request, read the same way by every
 * adapter built on Node's server.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { type HttpRequestInfo, type HttpResponse, plainProblem } from '../http.ts';
import { type RequestTarget, splitTarget } from '../http-rules.ts';
import { clientSignal } from './client-signal.ts';

/** Options of {@link requestInfo}. */
export interface RequestInfoOptions {
  /**
   * The request target as the client sent it, where the framework rewrote `req.url` (Express's
   * `req.originalUrl`: `req.url` is relative to the mount point), or already split.
   * @default req.url
   */
  target?: string | RequestTarget | undefined;
  /** The tenant of the request; without one every client shares one key space. */
  scope?: string | null | undefined;
  /** The body bytes, or a function that reads them (called only for recorded requests). */
  body?: HttpRequestInfo['body'];
}

/**
 * The `HttpRequestInfo` of a request: method, path and query of its target (origin or absolute
 * form), every `Idempotency-Key` line apart (`headersDistinct`, so two lines are refused rather
 * than joined), `Content-Type`, and a signal that aborts when the client leaves. Undefined when the
 * target is neither a path nor an absolute URL: answer {@link badTarget}.
 * @example
 * const info = requestInfo(req, res, { scope: tenantOf(req), body: () => readBody(req, { limit }) });
 * if (info === undefined) return writeResponse(res, badTarget());
 * const decision = await http.handle(info);
 */
export function requestInfo(
  req: IncomingMessage,
  res: ServerResponse,
  options: RequestInfoOptions & { target: RequestTarget },
): HttpRequestInfo;
export function requestInfo(
  req: IncomingMessage,
  res: ServerResponse,
  options?: RequestInfoOptions,
): HttpRequestInfo | undefined;
export function requestInfo(
  req: IncomingMessage,
  res: ServerResponse,
  options: RequestInfoOptions = {},
): HttpRequestInfo | undefined {
  const given = options.target ?? req.url ?? '/';
  const target = typeof given === 'string' ? splitTarget(given) : given;
  if (target === null) return undefined;
  return {
    method: req.method ?? 'GET',
    path: target.path,
    query: target.query,
    keyHeader: req.headersDistinct['idempotency-key'],
    contentType: req.headers['content-type'],
    scope: options.scope,
    signal: clientSignal(res),
    body: options.body,
  };
}

/** The 400 for a request target that is neither a path nor an absolute URL (`*`, an authority). */
export function badTarget(): HttpResponse {
  return plainProblem(400, 'Bad Request', 'The request target is neither a path nor an absolute URL.');
}
