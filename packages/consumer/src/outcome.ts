import type { OncelyError } from '@oncely/core';
import type { Message } from './message.ts';

/**
 * What handling one message came to: a result union, as expected outcomes are values, not
 * exceptions. A handler that throws is a failure: the error comes out of `handle` as it was thrown,
 * and nothing of that run is kept. What a subscription does with each:
 *
 * | status       | the delivery                                              |
 * |--------------|-----------------------------------------------------------|
 * | `processed`  | acked                                                     |
 * | `duplicate`  | acked (its effect happened before)                        |
 * | `mismatch`   | terminated / dead-lettered, never processed               |
 * | `busy`       | nak'd for redelivery after `retryAfterMs`; not a failure  |
 * | thrown       | nak'd with backoff; terminated after `maxAttempts`        |
 */
export type HandleOutcome<T> =
  /** The handler ran now, and its outcome (its writes, or the engine's record) is durable. */
  | { status: 'processed'; value: T }
  /**
   * Processed before: not run again. Engine mode gives the first run's recorded result back;
   * transactional mode records no result (`undefined`): the first run's writes are in your tables.
   */
  | { status: 'duplicate'; value: T | undefined }
  /** The id was processed before with another payload (`ERR_ONCELY_KEY_REUSED`): not processed. */
  | { status: 'mismatch'; error: OncelyError }
  /**
   * Not decided now: another delivery of this message holds it (its transaction, its engine lease),
   * or the engine could not record the outcome yet. Ask again after `retryAfterMs`.
   */
  | { status: 'busy'; retryAfterMs: number; reason: BusyReason };

/** Why a message is `busy`. */
export type BusyReason =
  /** Another delivery is processing it (engine mode: its lease; transactional: its uncommitted row, past `lockTimeoutMs`). */
  | 'in_progress'
  /** Engine mode: the store did not answer; nothing ran. */
  | 'store_unavailable'
  /** Engine mode: the work ran but its outcome is not recorded yet (the engine retries the store), or the key was taken over. */
  | 'not_recorded';

/** Handles one message: `inbox().handle` or `engineInbox().handle` with your handler bound. */
export type Handle = (message: Message) => Promise<HandleOutcome<unknown>>;
