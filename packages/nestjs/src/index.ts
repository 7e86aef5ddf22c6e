/**
 * @oncely/nestjs: Idempotency-Key handling for NestJS on Express or Fastify. Retries replay the
 * first response, byte for byte; the core decides, this package only translates.
 */
export { IDEMPOTENT_METADATA, Idempotent } from './idempotent.ts';
export { type IdempotencyContext, idempotencyOf, OncelyInterceptor } from './interceptor.ts';
export { ONCELY_OPTIONS, OncelyModule, type OncelyModuleAsyncOptions } from './oncely-module.ts';
export {
  type IdempotencyScope,
  type IdempotentOptions,
  NESTJS_DEFAULTS,
  type OncelyModuleOptions,
  type OncelyRequest,
} from './options.ts';
