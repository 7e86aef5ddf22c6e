/**
 * What the consumer reports through `onEvent`. Library code never logs: events are how an
 * application counts outcomes and alerts on refused, mismatched and dead-lettered messages.
 *
 * Each part reports what it alone knows, once: `inbox()` and `engineInbox()` report decisions
 * (`processed`, `duplicate`, `mismatch`, `busy`); the subscriptions report what they did with the
 * delivery (`refused`, `retry`, `dead_lettered`, `ack_failed`, `stopped`).
 */
export type ConsumerEventType =
  /** The handler ran, and its outcome is durable. */
  | 'processed'
  /** The message was processed before (a redelivery, a republish): not run again. */
  | 'duplicate'
  /** Error: the id was processed before with another payload. Not processed. */
  | 'mismatch'
  /** Another delivery of the same message is being processed right now: decide later. */
  | 'busy'
  /** Error: the delivery cannot be processed safely (no id, an unusable id, a body that is not JSON). */
  | 'refused'
  /** The handler failed; the message is redelivered after a delay. */
  | 'retry'
  /** Error: the message is given up (terminated, dead-lettered): poison after `maxAttempts`, or a mismatch. */
  | 'dead_lettered'
  /** The ack (or nak) did not reach the broker; it redelivers, and the redelivery is a duplicate. */
  | 'ack_failed'
  /** The subscription ended: `stop()`, or the broker closed it (then `error` says why). */
  | 'stopped';

/** Why a message was given up. */
export type DeadLetterReason = 'failed' | 'mismatch' | 'refused';

export interface ConsumerEvent {
  type: ConsumerEventType;
  /** Decisions: the consumer name (the inbox's `consumer`, the engine scope). */
  consumer?: string;
  /** Deliveries: where the message came from, `jetstream:<stream>/<consumer>` or `rabbitmq:<queue>`. */
  source?: string;
  /** The message id, once known. Safe to log: it is the producer's id, not the payload. */
  messageId?: string;
  /** `retry`, `dead_lettered`: which delivery of the message this was (1 for the first). */
  attempt?: number;
  /** `retry`, `busy`: in how many ms the message comes back. */
  delayMs?: number;
  /** `dead_lettered`: why. */
  reason?: DeadLetterReason;
  /** `mismatch`, `refused`, `retry`, `dead_lettered`, `ack_failed`, `stopped`: the error. */
  error?: unknown;
  /** The clock's time of the event, epoch ms. */
  at: number;
}

/** An observer; what it throws is ignored. */
export type ConsumerEventHandler = (event: ConsumerEvent) => void;

/** Call the observer, if any, never letting it change an outcome. */
export function emitter(
  onEvent: ConsumerEventHandler | undefined,
  clock: () => number,
): (event: Omit<ConsumerEvent, 'at'>) => void {
  return (event) => {
    if (onEvent === undefined) return;
    try {
      onEvent({ ...event, at: clock() });
    } catch {
      // An observer must never change what happens to a message.
    }
  };
}
