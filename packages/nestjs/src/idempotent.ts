/**
 * `@Idempotent()`: per-route (or per-controller) settings, kept as metadata for the interceptor.
 * A plain function returning Nest's `SetMetadata` decorator, so it works whatever compiles the app.
 */

import { type CustomDecorator, SetMetadata } from '@nestjs/common';
import { checkRouteOptions, type IdempotentOptions } from './options.ts';

/** The metadata key `@Idempotent()` sets on a handler or a controller class. */
export const IDEMPOTENT_METADATA = 'oncely:idempotent';

/**
 * Mark a route or a controller for Idempotency-Key handling, with settings of its own; a route's
 * settings override its controller's. `@Idempotent(false)` turns a route off (a webhook receiver).
 * With `routes: 'decorated'` only marked routes are recorded.
 * @example
 * @Post('payments')
 * @Idempotent({ required: true, cache: 'final-errors' })
 * create(@Body() body: CreatePayment) { return this.payments.create(body); }
 */
export function Idempotent(options: IdempotentOptions | false = {}): CustomDecorator<string> {
  return SetMetadata(IDEMPOTENT_METADATA, checkRouteOptions(options));
}
