/**
 * The envelope contract between the outbox's publishers and the idempotent consumer: where each part of
 * an outbox message travels on each broker. The consumer package reads exactly these names; change
 * them only together, and only in a major version (messages already in a stream keep the old names).
 *
 * | part          | NATS JetStream              | RabbitMQ (AMQP 0-9-1)          |
 * | ------------- | --------------------------- | ------------------------------ |
 * | message id    | header `Nats-Msg-Id`        | property `messageId`           |
 * | type          | header `Oncely-Type`        | property `type`                |
 * | aggregate key | header `Oncely-Key`         | header `oncely-key`            |
 * | content type  | header `Content-Type`       | property `contentType`         |
 * | topic         | subject                     | routing key                    |
 * | body          | the payload's JSON bytes    | the payload's JSON bytes       |
 * | caller headers| further headers             | further headers                |
 */

/** JetStream's own de-duplication header: the outbox message id, so a republish is dropped in the window. */
export const NATS_MSG_ID_HEADER = 'Nats-Msg-Id';
/** NATS header carrying the message type (e.g. `order.paid`). */
export const NATS_TYPE_HEADER = 'Oncely-Type';
/** NATS header carrying the aggregate key, the unit of ordering. */
export const NATS_KEY_HEADER = 'Oncely-Key';
/** NATS header carrying {@link CONTENT_TYPE}; NATS has no content-type property of its own. */
export const NATS_CONTENT_TYPE_HEADER = 'Content-Type';
/** AMQP header carrying the aggregate key (the id and type travel as the `messageId` and `type` properties). */
export const AMQP_KEY_HEADER = 'oncely-key';
/** The content type of every body: the payload, serialised as JSON (UTF-8). */
export const CONTENT_TYPE = 'application/json';

/**
 * Whether a caller header name is reserved: the names above, anything NATS or JetStream interprets
 * (`Nats-*`), and the `Oncely-*` / `oncely-*` prefix kept for this contract. Compared case-insensitively,
 * since both brokers' clients are commonly read case-insensitively.
 */
export function isReservedHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith('nats-') || lower.startsWith('oncely-') || lower === 'content-type';
}
