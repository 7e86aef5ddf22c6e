/**
 * The one interface between the relay and a broker.
 *
 * `publish` answers per message rather than all-or-nothing, because a batch mixes topics and keys:
 * one message the broker refuses (unroutable on RabbitMQ, no stream for its subject on JetStream, too
 * large) must not fail the other 99, which would then be republished (each a duplicate for the
 * consumers) and would keep healthy keys waiting on a sick one. So:
 * - resolve with one result per message, in order, once the broker has answered for each of them:
 *   `ok: true` only after the broker's confirmation (JetStream PubAck, AMQP publisher confirm);
 * - `ok: false, transient: true` when the broker could not be asked (disconnected, timed out): the
 *   relay retries later and does not count it against the message;
 * - `ok: false` otherwise: the broker refused this message; it counts toward the poison limit;
 * - reject (or throw) when the whole batch failed before any answer: every message is transient.
 */
import type { OutboxMessage } from './message.ts';

/** The broker's answer for one message. */
export type PublishResult =
  | {
      ok: true;
      /** The broker recognised the id as one it already has (JetStream's duplicate window). */
      duplicate?: boolean;
    }
  | {
      ok: false;
      error: Error;
      /** Not the message's fault (no connection, timeout): retried without counting toward the limit. */
      transient?: boolean;
    };

/** A broker publisher; see the module comment for the contract. */
export interface Publisher {
  /**
   * Publish a batch (at most one message per key) and resolve with one result per message, in order.
   * `signal` aborts when the relay's publish timeout ends: stop waiting, and answer what is known.
   */
  publish(messages: readonly OutboxMessage[], options: { signal: AbortSignal }): Promise<PublishResult[]>;
}

/** Results for a batch whose answers did not come: every message transient, with the reason. */
export function transientResults(count: number, error: Error): PublishResult[] {
  return Array.from({ length: count }, () => ({ ok: false, error, transient: true }));
}

/** The reason a signal aborted, as an Error. */
export function abortReason(signal: AbortSignal): Error {
  const { reason } = signal;
  return reason instanceof Error ? reason : new Error(`publish aborted: ${String(reason)}`);
}
