/**
 * The problems only the gateway sends (RFC 9457), next to core's. Core's code table is shared by
 * every adapter, so these live here, with the same fields and the same `type` scheme: a link to
 * their section in docs/gateway.md. A test keeps this table and that page in sync.
 */

import type { HttpResponse } from '@oncely/core';

/** Where every gateway problem `type` points. */
export const GATEWAY_DOCS_URL = 'https://github.com/oncely/oncely/blob/main/docs/gateway.md';

const CODES = {
  ERR_ONCELY_BODY_TOO_LARGE: { status: 413, title: 'Request body too large' },
  ERR_ONCELY_UPSTREAM_UNAVAILABLE: { status: 502, title: 'Upstream unavailable' },
  ERR_ONCELY_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timed out' },
} as const satisfies Record<string, { status: number; title: string }>;

/** A problem code of the gateway. */
export type GatewayProblemCode = keyof typeof CODES;

/** The gateway's code table: status and title per code. */
export const GATEWAY_PROBLEMS: Readonly<
  Record<GatewayProblemCode, { readonly status: number; readonly title: string }>
> = CODES;

/**
 * The `application/problem+json` response for a gateway problem. Never includes the key, the body or
 * the upstream's address: the detail says what happened in words a client can act on.
 * @example
 * gatewayProblem('ERR_ONCELY_UPSTREAM_TIMEOUT', 'The upstream did not answer within 60s.');
 */
export function gatewayProblem(code: GatewayProblemCode, detail: string): HttpResponse {
  const { status, title } = CODES[code];
  return problemJson({ type: `${GATEWAY_DOCS_URL}#${code.toLowerCase()}`, title, status, detail, code });
}

/** A problem without an Oncely code (`about:blank`, RFC 9457 §4.2.1), for plain HTTP errors of the admin paths. */
export function plainProblem(status: number, title: string, detail: string): HttpResponse {
  return problemJson({ type: 'about:blank', title, status, detail });
}

function problemJson(problem: { status: number } & Record<string, unknown>): HttpResponse {
  return {
    status: problem.status,
    headers: [
      ['content-type', 'application/problem+json'],
      ['cache-control', 'no-store'],
    ],
    body: new TextEncoder().encode(JSON.stringify(problem)),
  };
}
