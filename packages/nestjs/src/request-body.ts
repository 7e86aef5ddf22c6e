/**
 * The request body the fingerprint is computed from. Nest's body parsers (Express's and Fastify's)
 * read the stream before any guard or interceptor runs, so the exact bytes are only there when the
 * app keeps them: `NestFactory.create(AppModule, { rawBody: true })` puts them on `request.rawBody`.
 */

import type { IncomingMessage } from 'node:http';
import { HttpException } from '@nestjs/common';
import { OncelyError } from '@oncely/core';
import { BodyReadError, readBody } from '@oncely/core/node';
import type { OncelyRequest } from './options.ts';

/** What `HttpRequestInfo.body` takes. */
type Body = Uint8Array | string | null;

/**
 * In order of preference:
 * 1. `request.rawBody` (`rawBody: true`, or `useBodyParser()` under it): exactly what the client sent;
 * 2. the stream itself when no parser read it (a content type without a parser, `bodyParser: false`),
 *    read here by core's reader up to `limit` bytes and pushed back for the handler to read;
 * 3. a body a parser left as bytes or text (`Buffer`, `string`), as it is.
 *
 * A body that was parsed into a value without its bytes is refused: the fingerprint cannot tell
 * `1.50` from `1.5`, a number beyond 2^53 from its neighbour, or see a member named twice.
 */
export async function requestBody(
  request: OncelyRequest,
  raw: IncomingMessage,
  limit: number,
): Promise<Body> {
  const { rawBody, body } = request;
  if (rawBody instanceof Uint8Array || typeof rawBody === 'string') return rawBody;
  // No body, whatever a parser made of it.
  if (raw.headers['content-length'] === '0') return null;
  if (!raw.readableDidRead && raw.readable && !raw.readableEnded) {
    try {
      return await readBody(raw, { limit, restore: true });
    } catch (error) {
      // 413 or 400, as an exception Nest's filters answer with its status.
      if (error instanceof BodyReadError)
        throw new HttpException(error.message, error.status, { cause: error });
      throw error;
    }
  }
  if (body instanceof Uint8Array || typeof body === 'string') return body;
  if (body === undefined || body === null) return null;
  throw new OncelyError(
    'ERR_ONCELY_INVALID_OPTION',
    "@oncely/nestjs fingerprints the request's raw bytes, but the body was parsed without them: create the app with NestFactory.create(AppModule, { rawBody: true }).",
  );
}
