/**
 * The request body the fingerprint is computed from, whether or not a body parser ran before the
 * middleware, and without taking the body away from the parsers and handlers that run after it.
 */

import { OncelyError } from '@oncely/core';
import { readBody } from '@oncely/core/node';
import type { Request } from 'express';

/** What `HttpRequestInfo.body` takes. */
type Body = Uint8Array | string | null;

/** The bytes this middleware read itself, kept in case a second instance sees the same request. */
const ownBytes = Symbol('oncely.requestBody');

interface WithBody {
  [ownBytes]?: Uint8Array;
  rawBody?: unknown;
  body?: unknown;
}

/**
 * In order of preference:
 * 1. `req.rawBody` when a parser's `verify` kept the raw bytes: exactly what the client sent;
 * 2. `req.body` when a parser has already consumed the stream: a Buffer or string as is, anything
 *    else (a parsed JSON or form body) as JSON text, canonicalised by the fingerprint for JSON requests;
 * 3. otherwise the stream itself, read here (up to `limit` bytes) by core's reader and pushed back,
 *    so a parser or handler after the middleware reads the body as if nobody had touched it. Over
 *    the limit, or cut off, the read fails with an error that carries its status (413, 400) for
 *    Express's error handling, as a body parser's would.
 */
export async function requestBody(req: Request, limit: number): Promise<Body> {
  // No body, whatever a parser made of it (express.json() turns it into {}).
  if (req.headers['content-length'] === '0') return null;
  const own = req as Request & WithBody;
  if (own[ownBytes]) return own[ownBytes];
  if (own.rawBody instanceof Uint8Array || typeof own.rawBody === 'string') return own.rawBody;
  if (req.readableDidRead || req.readableEnded || !req.readable) return parsedBody(own.body);
  const bytes = await readBody(req, { limit, restore: true });
  own[ownBytes] = bytes;
  return bytes;
}

/**
 * The `verify` hook of Express's body parsers that keeps the raw bytes as `req.rawBody`, so the
 * fingerprint covers exactly what the client sent even when the parser runs before the middleware.
 * @example
 * app.use(express.json({ verify: keepRawBody }), idempotency(shared));
 */
export function keepRawBody(req: unknown, _res: unknown, buffer: Buffer): void {
  (req as WithBody).rawBody = buffer;
}

function parsedBody(body: unknown): Body {
  if (body === undefined || body === null) return null;
  if (body instanceof Uint8Array || typeof body === 'string') return body;
  if (holdsInexactNumber(body)) {
    // JSON.parse already rounded it: 9007199254740993 and 9007199254740992 are one double, so the
    // fingerprint could not tell two payloads apart and a retry with another amount would replay.
    // Refuse to guess: this is the server's setup to fix, not the client's request.
    throw new OncelyError(
      'ERR_ONCELY_INVALID_OPTION',
      'A body parser ran before @oncely/express without keeping the raw bytes, and the body holds a number beyond 2^53 that the parsed value no longer holds exactly. Mount idempotency() before the body parser, or pass { verify: keepRawBody } to it.',
    );
  }
  return JSON.stringify(body);
}

/** Whether a parsed value holds an integer JSON.parse may have rounded (beyond ±2^53). */
function holdsInexactNumber(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item === 'number') {
      if (Number.isInteger(item) && !Number.isSafeInteger(item)) return true;
    } else if (typeof item === 'object' && item !== null) {
      for (const child of Object.values(item)) stack.push(child);
    }
  }
  return false;
}
