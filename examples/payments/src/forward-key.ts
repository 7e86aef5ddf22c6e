import { createHash } from 'node:crypto';

/**
 * The idempotency key the API sends to its payment provider for one incoming request.
 *
 * Derived, not copied: the same (tenant, incoming key, purpose) always gives the same provider key,
 * so a retry that runs the handler again (after a crash, or after a lease takeover) charges under the
 * same provider key and gets the first charge back. Hashing keeps the tenant and the client's key
 * away from the provider, and the purpose label gives each downstream call of one request its own
 * key. See docs/forwarding.md.
 */
export function forwardKey(tenant: string, incomingKey: string, purpose: string): string {
  const hash = createHash('sha256');
  for (const part of ['oncely-forward-v1', tenant, incomingKey, purpose]) {
    hash.update(`${Buffer.byteLength(part)}:`);
    hash.update(part);
  }
  return `${purpose}_${hash.digest('base64url')}`;
}
