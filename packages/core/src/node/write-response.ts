/**
 * Sending a response Oncely has whole (a replay, a problem, an upstream response read to its end)
 * on a `node:http` response: status, every header line and the body in one write.
 */

import type { ServerResponse } from 'node:http';
import type { HttpResponse } from '../http.ts';
import { bodyAllowed } from '../http-rules.ts';
import { flatHeaders } from './header-lines.ts';

/** Options of {@link writeResponse}. */
export interface WriteResponseOptions {
  /** The reason phrase, when it is not Node's default for the status (an upstream's own). */
  statusMessage?: string | undefined;
}

/**
 * Send a response as it is: its status, every header line (repeated names such as `Set-Cookie`
 * kept apart; a field set on `res` before is replaced by one of the same name, others are kept),
 * and its bytes, with `Content-Length`. `writeHead` only stores the head; `end` then hands head and
 * body to the socket together, so they leave in one write. Where {@link bodyAllowed} says there is
 * no body none is sent. A response whose client already left is skipped.
 * @example
 * if (decision.kind === 'respond') return writeResponse(res, decision.response);
 */
export function writeResponse(
  res: ServerResponse,
  response: HttpResponse,
  options: WriteResponseOptions = {},
): void {
  if (res.destroyed) return;
  const { status, headers, body } = response;
  const method = res.req?.method;
  const allowed = bodyAllowed(method, status);
  // The length is the writer's to give: it frames the bytes it sends, which may be none.
  const flat = flatHeaders(headers.filter(([name]) => name.toLowerCase() !== 'content-length'));
  // What Node would frame by itself: every response but one to HEAD, a 1xx, 204 or 304, which
  // carry no length. A 205 has no content but is framed, as empty (RFC 9110 §15.3.6).
  if (allowed || (status === 205 && method !== 'HEAD')) {
    flat.push('content-length', String(allowed ? body.byteLength : 0));
  }
  if (options.statusMessage) res.writeHead(status, options.statusMessage, flat);
  else res.writeHead(status, flat);
  res.end(allowed && body.byteLength > 0 ? body : undefined);
}
