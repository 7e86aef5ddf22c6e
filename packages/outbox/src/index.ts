/**
 * @oncely/outbox: a transactional outbox on PostgreSQL. `add()` writes a message in your business
 * transaction; relays publish it to NATS JetStream (`@oncely/outbox/nats`) or RabbitMQ
 * (`@oncely/outbox/rabbitmq`) with its id as the broker's message id, in order per key, and mark it
 * once the broker confirmed. Takes your `pg` Pool; no runtime dependency on the driver.
 */
export * from './envelope.ts';
export type { JsonValue, NewMessage, OutboxMessage } from './message.ts';
export { MESSAGE_ID_NAMESPACE, messageId, uuidV7 } from './message-id.ts';
export { METRIC_NAMES } from './metrics.ts';
export {
  type AddResult,
  type DeadMessage,
  OUTBOX_DEFAULTS,
  type Outbox,
  type OutboxOptions,
  type OutboxStats,
  outbox,
  outboxSchema,
} from './outbox.ts';
export type { PgQueryable, PgQueryResult } from './pg-types.ts';
export type { Publisher, PublishResult } from './publisher.ts';
export { type BatchOutcome, type Relay, relay } from './relay.ts';
export { RELAY_DEFAULTS, type RelayEvent, type RelayOptions } from './relay-options.ts';
