import { createHash } from 'node:crypto';

/**
 * The record id: sha256 over the length-prefixed scope and key. Fixed length, hex only, so no
 * user-supplied byte ever reaches a store's key names or SQL, and ("ab","c") never meets ("a","bc").
 */
export function recordId(scope: string, key: string): string {
  const hash = createHash('sha256');
  hash.update('oncely-id-v1');
  for (const part of [scope, key]) {
    const bytes = new TextEncoder().encode(part);
    hash.update(`\n${bytes.length}:`);
    hash.update(bytes);
  }
  return hash.digest('hex');
}
