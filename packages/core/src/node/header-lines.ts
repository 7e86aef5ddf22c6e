/**
 * Header lists in the two flat shapes of `node:http`: `rawHeaders` as received, and the
 * `[name, value, name, value, …]` list `writeHead` sends line by line.
 */

import type { HeaderPairs } from '../http-rules.ts';

/**
 * `rawHeaders` (`[name, value, name, value, …]`, names as received, repeated names apart) as pairs.
 * @example
 * rawHeaderPairs(upstreamResponse.rawHeaders); // [['Content-Type', 'text/plain'], ['Set-Cookie', 'a=1'], …]
 */
export function rawHeaderPairs(rawHeaders: readonly string[]): HeaderPairs {
  const pairs: HeaderPairs = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) pairs.push([rawHeaders[i]!, rawHeaders[i + 1]!]);
  return pairs;
}

/**
 * Pairs as the flat list `res.writeHead(status, list)` takes: Node sends one line per pair, so
 * repeated names (`Set-Cookie`) stay apart, and replaces any field of the same name set before.
 * @example
 * res.writeHead(201, flatHeaders([['set-cookie', 'a=1'], ['set-cookie', 'b=2']]));
 */
export function flatHeaders(pairs: Iterable<readonly [string, string]>): string[] {
  const flat: string[] = [];
  for (const [name, value] of pairs) flat.push(name, value);
  return flat;
}
