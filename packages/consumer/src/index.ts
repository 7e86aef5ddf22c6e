/**
 * @oncely/consumer: the idempotent consumer. Every message's effect happens once, whatever the
 * broker redelivers: in transactional mode the inbox row and your writes commit in one PostgreSQL
 * transaction; in engine mode the Oncely engine records the outcome of effects outside the database.
 * Subscriptions for JetStream and RabbitMQ ack only once the outcome is durable.
 */
export {
  SUBSCRIPTION_DEFAULTS,
  type Subscription,
  type SubscriptionOptions,
} from './delivery.ts';
export { type EngineInbox, type EngineInboxOptions, type EngineWork, engineInbox } from './engine-inbox.ts';
export type { ConsumerEvent, ConsumerEventHandler, ConsumerEventType, DeadLetterReason } from './events.ts';
export {
  INBOX_DEFAULTS,
  type Inbox,
  type InboxOptions,
  type InboxWork,
  inbox,
  inboxSchema,
} from './inbox.ts';
export {
  consumeJetStream,
  type JetStreamConsumerLike,
  type JetStreamDeliveries,
  type JetStreamDelivery,
  type JetStreamSubscriptionOptions,
} from './jetstream.ts';
export {
  AMQP_KEY_HEADER,
  type JetStreamMessageLike,
  jetStreamMessage,
  type Message,
  NATS_HEADERS,
  payloadHash,
  type RabbitMessageLike,
  rabbitMessage,
} from './message.ts';
export type { BusyReason, Handle, HandleOutcome } from './outcome.ts';
export type { PgPool, PgPoolClient, PgQueryable, PgQueryResult, PoolClientOf } from './pg-types.ts';
export {
  consumeRabbit,
  type RabbitChannelLike,
  type RabbitDelivery,
  type RabbitSubscriptionOptions,
} from './rabbit.ts';
