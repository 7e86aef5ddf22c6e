/**
 * @oncely/fastify: the Idempotency-Key plugin for Fastify 5. Retries replay the first response, byte
 * for byte; the decisions are made by `@oncely/core`.
 */
export {
  type FastifyIdempotencyContext,
  type FastifyIdempotencyOptions,
  type FastifyIdempotencyRouteConfig,
  idempotency,
} from './plugin.ts';
