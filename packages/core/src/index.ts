/**
 * @oncely/core: the framework-free idempotency engine. Adapters, stores and the gateway build on it;
 * it depends on nothing but Node's own modules.
 */
export { CACHE_PRESETS, type CachePolicy, type CachePreset } from './cache-policy.ts';
export { canonicalJson } from './canonical-json.ts';
export {
  ERROR_CODES,
  isOncelyError,
  OncelyError,
  type OncelyErrorCode,
  type OncelyErrorOptions,
  type Problem,
  problemType,
} from './errors.ts';
export type { OncelyEvent, OncelyEventType, StoreOperation } from './events.ts';
export { canonicalQuery, type FingerprintInput, fingerprint } from './fingerprint.ts';
export {
  connectionOptions,
  HOP_BY_HOP,
  HTTP_DEFAULTS,
  HTTP_ROUTE_KEYS,
  type HttpDecision,
  type HttpIdempotency,
  type HttpIdempotencyOptions,
  type HttpRequestInfo,
  type HttpResponse,
  type HttpRouteOptions,
  httpIdempotency,
  plainProblem,
  problemResponse,
  type RespondReason,
  replayResponse,
  routeOptionsProblem,
  storableResponse,
} from './http.ts';
export {
  bodyAllowed,
  groupHeaders,
  type HeaderPairs,
  headerObject,
  headerPairs,
  type RequestTarget,
  splitTarget,
  webHeaderPairs,
  webResponse,
} from './http-rules.ts';
export {
  isValidKey,
  type KeyParseResult,
  MAX_KEY_LENGTH,
  type ParseKeyOptions,
  parseIdempotencyKey,
} from './key.ts';
export { type MemoryStoreOptions, memoryStore } from './memory-store.ts';
export {
  type BeginInput,
  type CommitOutcome,
  createOncely,
  type Decision,
  type ExecuteDecision,
  type Oncely,
  type RejectDecision,
  type ReplayDecision,
  runResultOf,
  runResultResponse,
} from './oncely.ts';
export { DEFAULTS, type OncelyOptions } from './options.ts';
export { recordId } from './record-id.ts';
export type {
  AcquireInput,
  AcquireResult,
  CompleteInput,
  ExtendInput,
  GetInput,
  IdempotencyRecord,
  ListInput,
  ListResult,
  PurgeExpiredInput,
  RecordCache,
  RecordState,
  RecordSummary,
  ReleaseInput,
  Store,
  StoredResponse,
  StoreHealth,
} from './store.ts';
export { TIERED_DEFAULTS, type TieredStoreOptions, tieredStore } from './tiered-store.ts';
export { DAY, HOUR, MINUTE, SECOND } from './time.ts';
