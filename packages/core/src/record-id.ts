import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';

/**
 * The record id: sha256 over the length-prefixed scope and key. Fixed length, hex only, so no
 * user-supplied byte ever reaches a store's key names or SQL, and ("ab","c") never meets ("a","bc").
 */
export function recordId(scope: string, key: string): string {
  const hash = createHash('sha256');
  hash.update('oncely-id-v1');
  // Each part as `\n<byte length>:<UTF-8 bytes>` (lone surrogates as U+FFFD, as TextEncoder does).
  hash.update(`\n${Buffer.byteLength(scope, 'utf8')}:`);
  hash.update(scope, 'utf8');
  hash.update(`\n${Buffer.byteLength(key, 'utf8')}:`);
  hash.update(key, 'utf8');
  return hash.digest('hex');
}
