/**
 * A saga's definition: ordered steps, each an action and (for a compensatable step) a compensation,
 * classified the way Garcia-Molina and Salem's sagas and the "pivot transaction" literature do:
 *
 *   compensatable*  pivot?  retriable*
 *
 * - compensatable: can be undone; runs before the pivot. A failure here or at the pivot undoes the
 *   completed compensatable steps, in reverse.
 * - pivot: the go/no-go point; once it succeeded the saga only goes forward. Never compensated.
 * - retriable: after the pivot; a failure is retried (a new attempt, a new key) until it succeeds,
 *   never compensated, since compensating past the pivot is what the pivot rules out.
 *
 * A definition that would compensate past its pivot (a compensatable step after it) or retry before
 * it (a retriable step that a later failure would have to compensate) is refused at construction.
 */
import { OncelyError } from '@oncely/core';
import type { JsonValue } from '@oncely/outbox';
import type { PgQueryable } from './pg-types.ts';

/** How a step behaves on failure. */
export type StepKind = 'compensatable' | 'pivot' | 'retriable';

/** What an action or compensation sees. */
export interface StepContext {
  /** The saga's id (`order_123`). */
  readonly sagaId: string;
  /** The step's name. */
  readonly step: string;
  /** 1 on the first attempt; a new attempt follows only a definite failure (retriable steps, compensations). */
  readonly attempt: number;
  /** The key the participant deduplicates on: saga + id + step (+ attempt where attempts differ). */
  readonly idempotencyKey: string;
  /** The data the saga started with. */
  readonly data: JsonValue;
  /** Each completed step's result (the reply's `result`, or the local call's return), by step name. */
  readonly results: Readonly<Record<string, JsonValue>>;
}

/** A command for a participant, sent through the outbox in the saga's transaction. */
export interface StepCommand {
  /** NATS subject / AMQP routing key of the participant, e.g. `payments.authorise`. */
  topic: string;
  /** Message type, e.g. `payment.authorise`. */
  type: string;
  payload: JsonValue;
  /** Further headers (the saga's own, `Idempotency-Key` and `Saga-*`, are added). */
  headers?: Record<string, string>;
}

/**
 * An action or a compensation: either a command to a participant (the step completes when its reply
 * arrives) or a local call, run inside the saga's transaction (the step completes when it returns;
 * a throw is the step's failure, and its writes are rolled back to a savepoint).
 */
export type StepAction =
  | { command: (context: StepContext) => StepCommand }
  | {
      local: (
        tx: PgQueryable,
        context: StepContext,
      ) => JsonValue | undefined | Promise<JsonValue | undefined>;
    };

/** One step of a saga. */
export interface StepDefinition {
  /** Unique within the saga: 1–64 of `A-Z a-z 0-9 _ -`. Keep it stable: it is part of the keys. */
  name: string;
  kind: StepKind;
  action: StepAction;
  /** Required for compensatable steps; refused on pivot and retriable ones (they are never compensated). */
  compensation?: StepAction;
  /** How long to wait for a command's reply. @default the saga's `stepTimeoutMs` */
  timeoutMs?: number;
  /** Attempts of a retriable action or of the compensation before the saga is `stuck`. @default the saga's `maxAttempts` */
  maxAttempts?: number;
}

const STEP_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const STEP_FIELDS = new Set(['name', 'kind', 'action', 'compensation', 'timeoutMs', 'maxAttempts']);
const RANK: Record<StepKind, number> = { compensatable: 0, pivot: 1, retriable: 2 };

/** Check a definition's steps; throws `ERR_ONCELY_INVALID_OPTION` naming the first problem. */
export function validateSteps(steps: unknown): readonly StepDefinition[] {
  if (!Array.isArray(steps) || steps.length === 0) throw invalid('"steps" must be a non-empty array');
  const names = new Set<string>();
  let previous: StepDefinition | undefined;
  for (const [index, step] of (steps as StepDefinition[]).entries()) {
    if (typeof step !== 'object' || step === null) throw invalid(`step ${index} must be an object`);
    for (const field of Object.keys(step)) {
      if (!STEP_FIELDS.has(field)) throw invalid(`step ${index}: unknown field "${field}"`);
    }
    const { name, kind } = step;
    if (typeof name !== 'string' || !STEP_NAME.test(name)) {
      throw invalid(`step ${index}: "name" must match ${STEP_NAME}`);
    }
    if (names.has(name)) throw invalid(`step "${name}" is defined twice`);
    names.add(name);
    if (!(kind in RANK)) throw invalid(`step "${name}": "kind" must be compensatable, pivot or retriable`);
    checkAction(step.action, `step "${name}": "action"`);
    if (kind === 'compensatable') {
      if (step.compensation === undefined)
        throw invalid(`step "${name}" is compensatable but has no compensation`);
      checkAction(step.compensation, `step "${name}": "compensation"`);
    } else if (step.compensation !== undefined) {
      throw invalid(`step "${name}" is ${kind}: it is never compensated, so it takes no compensation`);
    }
    if (previous !== undefined && RANK[kind] < RANK[previous.kind]) {
      throw invalid(
        kind === 'compensatable'
          ? `step "${name}" is compensatable but comes after ${previous.kind} step "${previous.name}": ` +
              'a failure there would compensate past the pivot'
          : `step "${name}" is a pivot after retriable step "${previous.name}": retriable steps come only after the pivot`,
      );
    }
    if (kind === 'pivot' && previous?.kind === 'pivot') {
      throw invalid(`step "${name}" is a second pivot (after "${previous.name}"): a saga has at most one`);
    }
    if (kind === 'retriable' && previous?.kind === 'compensatable') {
      throw invalid(
        `step "${name}" is retriable right after compensatable step "${previous.name}": retriable steps ` +
          'come only after a pivot (make the last step that can still fail for good the pivot)',
      );
    }
    for (const option of ['timeoutMs', 'maxAttempts'] as const) {
      const value = step[option];
      if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= 2 ** 31 - 1)) {
        throw invalid(`step "${name}": "${option}" must be a positive integer`);
      }
    }
    previous = step;
  }
  return Object.freeze([...(steps as StepDefinition[])]);
}

function checkAction(action: unknown, what: string): void {
  if (typeof action !== 'object' || action === null)
    throw invalid(`${what} must be { command } or { local }`);
  const keys = Object.keys(action);
  const [key] = keys;
  if (keys.length !== 1 || (key !== 'command' && key !== 'local')) {
    throw invalid(`${what} must have exactly one of "command" or "local"`);
  }
  if (typeof (action as Record<string, unknown>)[key] !== 'function')
    throw invalid(`${what}.${key} must be a function`);
}

export function invalid(detail: string): OncelyError {
  return new OncelyError('ERR_ONCELY_INVALID_OPTION', `saga: ${detail}`);
}
