/**
 * @oncely/saga: orchestrated sagas on PostgreSQL. A saga's state and its next command commit in one
 * transaction (the state table and `@oncely/outbox`); replies come back through `@oncely/consumer`'s
 * inbox, so a duplicate never advances a saga twice; a failure before the pivot compensates the
 * completed steps in reverse, each once; a failure after it is retried forward.
 */
export type {
  StepAction,
  StepCommand,
  StepContext,
  StepDefinition,
  StepKind,
} from './definition.ts';
export {
  SAGA_HEADERS,
  SAGA_REPLY_TYPE,
  type SagaCommand,
  type SagaPhase,
  type StepReply,
  sagaCommand,
  sagaReply,
} from './protocol.ts';
export {
  type ReplyOutcome,
  SAGA_DEFAULTS,
  type Saga,
  type SagaFailure,
  type SagaHistoryEntry,
  type SagaOptions,
  type SagaState,
  type SagaStatus,
  saga,
  sagaSchema,
} from './saga.ts';
