/**
 * Chunks as one fresh Uint8Array of `size` bytes: never a view into Buffer's shared pool, which a
 * later allocation reuses, since stores keep the bytes past the request.
 */
export function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
