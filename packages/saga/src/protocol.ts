/**
 * The wire protocol between the orchestrator and its participants: a command carries the saga's
 * coordinates in headers, and the participant answers with `sagaReply()`, which copies them back, so
 * the orchestrator knows which step, phase and attempt a reply is for and ignores one that is stale.
 *
 * | header            | value                                                        |
 * |-------------------|--------------------------------------------------------------|
 * | `Idempotency-Key` | saga:id:step[:attempt], or saga:id:step:compensate[:attempt] |
 * | `Saga-Name`       | the saga's name                                              |
 * | `Saga-Id`         | the saga instance's id                                       |
 * | `Saga-Step`       | the step's name                                              |
 * | `Saga-Phase`      | `action` or `compensation`                                   |
 * | `Saga-Attempt`    | 1, 2, ...                                                    |
 * | `Saga-Reply-To`   | the topic replies go to                                      |
 */
import type { Message } from '@oncely/consumer';
import { OncelyError } from '@oncely/core';
import type { JsonValue, NewMessage } from '@oncely/outbox';

/** The header names of the saga protocol. */
export const SAGA_HEADERS = Object.freeze({
  idempotencyKey: 'Idempotency-Key',
  name: 'Saga-Name',
  id: 'Saga-Id',
  step: 'Saga-Step',
  phase: 'Saga-Phase',
  attempt: 'Saga-Attempt',
  replyTo: 'Saga-Reply-To',
});

/** The message type of a reply. */
export const SAGA_REPLY_TYPE = 'saga.reply';

/** Whether a command is a step's action or its compensation. */
export type SagaPhase = 'action' | 'compensation';

/** A command's saga coordinates, as `sagaCommand()` reads them. */
export interface SagaCommand {
  /** What the participant deduplicates its effect on (forward it to your provider, key your inbox by it). */
  idempotencyKey: string;
  saga: string;
  sagaId: string;
  step: string;
  phase: SagaPhase;
  attempt: number;
  replyTo: string;
}

/** What a participant answers: done (with a result the later steps can read), or failed for good. */
export type StepReply = { ok: true; result?: JsonValue } | { ok: false; error: string };

/**
 * The saga coordinates of a delivered command; throws `ERR_ONCELY_KEY_MISSING` for a message that
 * is not a saga command.
 * @example
 * const command = sagaCommand(message);
 * await provider.charge(request, { idempotencyKey: command.idempotencyKey });
 */
export function sagaCommand(message: Pick<Message, 'headers'>): SagaCommand {
  const header = (name: string): string => {
    const found = Object.entries(message.headers).find(([key]) => key.toLowerCase() === name.toLowerCase());
    if (found === undefined || found[1] === '') {
      throw new OncelyError(
        'ERR_ONCELY_KEY_MISSING',
        `saga: the message has no ${name} header: not a saga command`,
      );
    }
    return found[1];
  };
  const phase = header(SAGA_HEADERS.phase);
  if (phase !== 'action' && phase !== 'compensation') {
    throw new OncelyError(
      'ERR_ONCELY_KEY_INVALID',
      `saga: ${SAGA_HEADERS.phase} must be action or compensation`,
    );
  }
  const attempt = Number(header(SAGA_HEADERS.attempt));
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new OncelyError(
      'ERR_ONCELY_KEY_INVALID',
      `saga: ${SAGA_HEADERS.attempt} must be a positive integer`,
    );
  }
  return {
    idempotencyKey: header(SAGA_HEADERS.idempotencyKey),
    saga: header(SAGA_HEADERS.name),
    sagaId: header(SAGA_HEADERS.id),
    step: header(SAGA_HEADERS.step),
    phase,
    attempt,
    replyTo: header(SAGA_HEADERS.replyTo),
  };
}

/**
 * The reply to a command, as a message for the participant's own outbox: add it in the same
 * transaction as the participant's effect, so the effect and its reply commit together. Its id
 * derives from the idempotency key: answering the same command twice adds one reply.
 * @example
 * await participantOutbox.add(tx, sagaReply(message, { ok: true, result: { chargeId } }));
 */
export function sagaReply(message: Pick<Message, 'headers'>, reply: StepReply): NewMessage {
  const command = sagaCommand(message);
  const payload: JsonValue = reply.ok
    ? { ok: true, result: reply.result ?? null }
    : { ok: false, error: String(reply.error) };
  return {
    topic: command.replyTo,
    key: command.sagaId,
    type: SAGA_REPLY_TYPE,
    payload,
    headers: commandHeaders(command),
    id: `${command.idempotencyKey}:reply`,
  };
}

/** The headers of a command (and of its reply). */
export function commandHeaders(command: SagaCommand): Record<string, string> {
  return {
    [SAGA_HEADERS.idempotencyKey]: command.idempotencyKey,
    [SAGA_HEADERS.name]: command.saga,
    [SAGA_HEADERS.id]: command.sagaId,
    [SAGA_HEADERS.step]: command.step,
    [SAGA_HEADERS.phase]: command.phase,
    [SAGA_HEADERS.attempt]: String(command.attempt),
    [SAGA_HEADERS.replyTo]: command.replyTo,
  };
}

/** A reply's body, checked. */
export function replyBody(payload: unknown): StepReply | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const body = payload as Record<string, unknown>;
  if (body.ok === true) return { ok: true, result: (body.result ?? null) as JsonValue };
  if (body.ok === false) return { ok: false, error: String(body.error ?? 'failed') };
  return undefined;
}
