/**
 * The tenant of a request, derived from a configured header (an API key, an account id). The value
 * is hashed before it reaches the engine: the engine reports `scope` in every event, and an API key
 * must never end up in logs or metrics. The record id hashes (scope, key) once more, so the store
 * sees neither the header value nor this hash.
 */

import { createHash } from 'node:crypto';
import { recordId } from '@oncely/core';

/**
 * The scope the gateway gives the engine for a scope-header value: sha256 hex of a versioned,
 * domain-separated prefix and the value. `oncely keys show --scope <value>` uses the same function,
 * so it finds what the proxy stored.
 * @example
 * scopeOf('sk_live_123'); // '4f1c…' (64 hex characters)
 */
export function scopeOf(headerValue: string): string {
  return createHash('sha256').update('oncely-gateway-scope-v1\n').update(headerValue, 'utf8').digest('hex');
}

/**
 * The record id of a key as the gateway stores it: the scope is `scopeOf(value)` when the request
 * carried the scope header, and the empty (shared) scope when it did not.
 * @example
 * gatewayRecordId('order_1:pay:1', 'sk_live_123') === recordId(scopeOf('sk_live_123'), 'order_1:pay:1');
 */
export function gatewayRecordId(key: string, scopeValue?: string | null): string {
  return recordId(scopeValue == null ? '' : scopeOf(scopeValue), key);
}
