/**
 * @oncely/hono: Idempotency-Key middleware for Hono, on web-standard Request and Response. Runs on Node,
 * Bun and Deno, and on Cloudflare Workers with `nodejs_compat` (the core hashes with `node:crypto`).
 */
export {
  type HonoIdempotencyOptions,
  type IdempotencyVariable,
  type IdempotencyVariables,
  idempotency,
} from './idempotency.ts';
