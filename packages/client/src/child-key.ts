/**
 * Keys for downstream calls. A service that received a key and calls a provider must send the
 * provider a key of its own that is the same on every run of the same request (so a re-run after a
 * crash gets the first result back), distinct per downstream call, and opaque (the caller's key may
 * mean something). docs/forwarding.md explains the choice; this is the browser-safe form.
 */
import { OncelyClientError } from './errors.ts';
import { hasLoneSurrogate, sha256Base64url } from './sha256.ts';

const LABEL = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * The key for the downstream call `label` made on behalf of `parentKey`:
 * `<label>_<base64url sha256("oncely-child-v1", parentKey, label)>`, each part length-prefixed. At
 * most 108 characters, always a valid key. If parent keys come from several tenants, make the tenant
 * part of the parent (`childKey(await deriveKey(tenant, key), 'charge')`) so two tenants' equal keys
 * do not meet downstream.
 * @example
 * await provider.charge(card, { idempotencyKey: await childKey(request.idempotency.key, 'charge') });
 */
export async function childKey(parentKey: string, label: string): Promise<string> {
  if (typeof parentKey !== 'string' || parentKey.length === 0 || hasLoneSurrogate(parentKey)) {
    throw new OncelyClientError('ERR_ONCELY_CLIENT_INVALID_KEY', 'childKey needs a non-empty parent key');
  }
  if (typeof label !== 'string' || !LABEL.test(label)) {
    throw new OncelyClientError(
      'ERR_ONCELY_CLIENT_INVALID_KEY',
      'childKey label must be 1 to 64 characters of A-Z, a-z, 0-9, "_", "." or "-"',
    );
  }
  return `${label}_${await sha256Base64url(['oncely-child-v1', parentKey, label])}`;
}
