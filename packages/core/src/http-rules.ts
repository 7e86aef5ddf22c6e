/**
 * The runtime-neutral rules of the HTTP edge, written once for every adapter: which responses carry
 * a body, how a request target splits into path and query, and how header lists move between the
 * pair form Oncely stores and the forms frameworks hand out. Plain objects and web-standard
 * `Headers`/`Response` only, so Hono on Workers uses the same rules as the Node edge.
 */

import type { HttpResponse } from './http.ts';

/** Header fields as Oncely keeps them: one `[name, value]` pair per line, repeated names apart. */
export type HeaderPairs = Array<[string, string]>;

/**
 * Whether a response carries content. Never for a `HEAD` request (RFC 9110 §9.3.2), a 1xx, 204 or
 * 304 (RFC 9112 §6.3), nor a 205 Reset Content, whose sender "MUST NOT generate content" (RFC 9110
 * §15.3.6). Node's server drops a body for the first four by itself but sends one for a 205; a web
 * `Response` refuses one for 204, 205 and 304. Every adapter stores and sends such responses
 * with an empty body, so the first response and its replays agree on every runtime.
 * @example
 * bodyAllowed('POST', 201); // true
 * bodyAllowed('POST', 205); // false
 */
export function bodyAllowed(method: string | null | undefined, status: number): boolean {
  if (method?.toUpperCase() === 'HEAD') return false;
  return !(status < 200 || status === 204 || status === 205 || status === 304);
}

/** The path (as received) and the raw query (with its `?`, or '') of a request target. */
export interface RequestTarget {
  path: string;
  query: string;
}

/**
 * Split a request target (RFC 9112 §3.2): the origin form (`/path?query`) as received, the absolute
 * form (`http://host/path?query`, what a client talking to a proxy sends) as its path and query.
 * Null for anything else (`*`, an authority, a URL of another scheme): it names no resource here.
 * @example
 * splitTarget('/orders?b=2&a=1'); // { path: '/orders', query: '?b=2&a=1' }
 */
export function splitTarget(target: string): RequestTarget | null {
  if (!target.startsWith('/')) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return null;
    }
    // `example.com:443` parses as a URL of the scheme `example.com:`; only an http(s) one is a target.
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return { path: url.pathname, query: url.search };
  }
  const queryAt = target.indexOf('?');
  return queryAt === -1
    ? { path: target, query: '' }
    : { path: target.slice(0, queryAt), query: target.slice(queryAt) };
}

/**
 * A header object (Node's `getHeaders()`, Fastify's `reply.getHeaders()`) as pairs: an array value
 * (several lines, such as `set-cookie`) becomes several pairs, an undefined one none.
 * @example
 * headerPairs({ 'set-cookie': ['a=1', 'b=2'], 'content-length': 3 });
 * // [['set-cookie', 'a=1'], ['set-cookie', 'b=2'], ['content-length', '3']]
 */
export function headerPairs(
  headers: Readonly<Record<string, string | number | readonly string[] | undefined>>,
): HeaderPairs {
  const pairs: HeaderPairs = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const line of value) pairs.push([name, String(line)]);
    else pairs.push([name, String(value)]);
  }
  return pairs;
}

/** Pairs grouped by lower-case name, in first-seen order: one entry a field, its lines in order. */
export function groupHeaders(pairs: Iterable<readonly [string, string]>): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    const values = fields.get(lower);
    if (values) values.push(value);
    else fields.set(lower, [value]);
  }
  return fields;
}

/**
 * Pairs as a header object for APIs that take one (Fastify's `reply.headers()`): a repeated name
 * becomes an array, which those APIs send as one line per value.
 */
export function headerObject(pairs: Iterable<readonly [string, string]>): Record<string, string | string[]> {
  const object: Record<string, string | string[]> = {};
  for (const [name, values] of groupHeaders(pairs)) object[name] = values.length === 1 ? values[0]! : values;
  return object;
}

/** Web `Headers` as pairs, every `Set-Cookie` line kept apart (iterating `Headers` would join them). */
export function webHeaderPairs(headers: Headers): HeaderPairs {
  const pairs: HeaderPairs = [];
  headers.forEach((value, name) => {
    if (name !== 'set-cookie') pairs.push([name, value]);
  });
  for (const cookie of headers.getSetCookie()) pairs.push(['set-cookie', cookie]);
  return pairs;
}

/**
 * A replay or a problem as a web `Response`: every header line apart, and no body where
 * {@link bodyAllowed} says there is none (`new Response(body, { status: 204 })` would throw).
 * @example
 * return webResponse(decision.response, c.req.method);
 */
export function webResponse({ status, headers, body }: HttpResponse, method?: string | null): Response {
  const out = new Headers();
  for (const [name, value] of headers) out.append(name, value);
  return new Response(bodyAllowed(method, status) ? body : null, { status, headers: out });
}
