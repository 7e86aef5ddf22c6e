/**
 * @oncely/express: Idempotency-Key middleware for Express 5 and 4. Retries replay the first response,
 * byte for byte; the core decides, this package only translates.
 */
export {
  EXPRESS_DEFAULTS,
  type ExpressIdempotencyOptions,
  type IdempotencyContext,
  idempotency,
} from './idempotency.ts';
export { keepRawBody } from './request-body.ts';
