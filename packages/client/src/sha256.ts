/**
 * SHA-256 on Web Crypto (`crypto.subtle`), present in browsers, Node, Deno, Bun and Workers, unlike
 * Node's crypto module. It is async everywhere, which is why the key helpers that hash return promises.
 */

const encoder = new TextEncoder();

/** base64url (RFC 4648 §5, no padding) of the SHA-256 of the length-prefixed UTF-8 `parts`. */
export async function sha256Base64url(parts: readonly string[]): Promise<string> {
  // Each part is prefixed with its byte length, so ("ab", "c") and ("a", "bc") hash differently.
  const encoded = parts.map((part) => encoder.encode(part));
  const prefixes = encoded.map((bytes) => encoder.encode(`${bytes.length}:`));
  const input = new Uint8Array(encoded.reduce((n, bytes, i) => n + prefixes[i]!.length + bytes.length, 0));
  let offset = 0;
  for (let i = 0; i < encoded.length; i++) {
    input.set(prefixes[i]!, offset);
    offset += prefixes[i]!.length;
    input.set(encoded[i]!, offset);
    offset += encoded[i]!.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', input));
  let binary = '';
  for (const byte of digest) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** True when `s` holds a lone surrogate: TextEncoder would turn it into U+FFFD, so two such strings could meet. */
export function hasLoneSurrogate(s: string): boolean {
  return /\p{Surrogate}/u.test(s);
}
