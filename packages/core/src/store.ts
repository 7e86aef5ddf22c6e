/**
 * The store contract. A store keeps one record per idempotency key and makes each step atomic.
 *
 * Time is always passed in by the engine (`now`, `leaseUntil`, `expiresAt` are epoch ms from the
 * engine's clock), so a store never reads a clock of its own: every store agrees with an injected
 * clock, and a store on a remote server cannot disagree with the engine about when a lease ends.
 *
 * Expected outcomes (the key is taken, the token is stale) are return values. A store throws only
 * when it failed (connection lost, disk full); the engine turns that into a 503 or a retry.
 */

/** `in_progress` while an owner runs the work; `completed` once its outcome is stored. */
export type RecordState = 'in_progress' | 'completed';

/** A response as stored and replayed: binary-safe body, headers as a list of pairs (multi-value safe). */
export interface StoredResponse {
  /** HTTP status code (or 200 for the function-level API). */
  status: number;
  /** Header pairs in order; a name may appear more than once. Names are lower case. */
  headers: Array<[string, string]>;
  /** Body bytes; may be empty. */
  body: Uint8Array;
}

/** One idempotency record, as every store keeps it. */
export interface IdempotencyRecord {
  /** sha256 hex of (scope, key): fixed length, no user bytes reach store key names. */
  id: string;
  state: RecordState;
  /** Fingerprint of the request that created the record; a retry with another one is refused. */
  fingerprint: string;
  /** Random fencing token of the current owner. */
  token: string;
  /** Epoch ms; an `in_progress` record whose lease ended may be taken over. */
  leaseUntil: number;
  /** Epoch ms; the record is gone (as if never written) from this instant on. */
  expiresAt: number;
  /**
   * The stored outcome of a `completed` record. `null` while in progress, and also for a completed
   * record whose response was too large to keep: the work ran, its response cannot be replayed.
   */
  response: StoredResponse | null;
}

export interface AcquireInput {
  id: string;
  fingerprint: string;
  /** The would-be owner's fencing token. */
  token: string;
  now: number;
  leaseUntil: number;
  expiresAt: number;
}

/**
 * `acquired`: the caller owns the record (new, or taken over from an owner whose lease ended, or
 * replacing a record whose retention ended). `existing`: somebody else's record, returned whole so
 * the engine can replay it, refuse a mismatch or report a conflict without a second round trip.
 */
export type AcquireResult =
  | { acquired: true; record: IdempotencyRecord; takeover: boolean }
  | { acquired: false; record: IdempotencyRecord };

export interface CompleteInput {
  id: string;
  token: string;
  /** The outcome to keep, or `null` when the work ran but its response is not kept (too large). */
  response: StoredResponse | null;
  now: number;
  /** New retention end, counted from completion. */
  expiresAt: number;
}

export interface ExtendInput {
  id: string;
  token: string;
  now: number;
  leaseUntil: number;
}

export interface ReleaseInput {
  id: string;
  token: string;
}

export interface GetInput {
  id: string;
  now: number;
}

/**
 * What a store implements. Every step is atomic, and `complete`, `extend` and `release` take effect
 * only while `token` is the record's current token and the record is `in_progress`: an owner that lost
 * its lease to a takeover can never overwrite or delete the new owner's record.
 */
export interface Store {
  /** Short name for events and logs, e.g. `sqlite`. */
  readonly name: string;
  /**
   * Atomically: create the record (`in_progress`, owned by `token`); or take over an `in_progress`
   * record with the same fingerprint whose lease ended (`leaseUntil <= now`); or replace a record whose
   * retention ended (`expiresAt <= now`); otherwise return the existing record untouched.
   */
  acquire(input: AcquireInput): Promise<AcquireResult>;
  /** Store the outcome and mark `completed`. `false` when the token is no longer the owner's. */
  complete(input: CompleteInput): Promise<boolean>;
  /** Push the lease end forward. `false` when the token is no longer the owner's. */
  extend(input: ExtendInput): Promise<boolean>;
  /** Delete an `in_progress` record so the key is free again. `false` when the token is not the owner's. */
  release(input: ReleaseInput): Promise<boolean>;
  /** The live record, or `null` when there is none or its retention ended. */
  get(input: GetInput): Promise<IdempotencyRecord | null>;
  /** Release resources the store itself created (timers, a database it opened). Safe to call twice. */
  close(): Promise<void>;
  /**
   * Optional: whether the store can take writes right now, without waiting for a lock. Health checks
   * call it (the gateway's healthz) to report a store that answers reads but cannot write, such as a
   * SQLite file whose write lock another process holds. Never blocks longer than one statement.
   */
  health?(): Promise<StoreHealth>;
  /**
   * Optional: call `onChange` soon after the record `id` was completed or released, by any process.
   * Returns a function that stops watching. Waiters (`concurrency: 'wait'`) use it to hear of a
   * completion at once; a notification may be lost (a reconnect), so the engine still polls, less
   * often. Never called on the request path of a request that does not wait.
   */
  watch?(input: { id: string }, onChange: () => void): () => void;
  /**
   * Optional, for operators (`oncely keys list`), never called by the engine: one page of the live
   * records (`expiresAt > now`), at most `limit`, in an order of the store's own that holds from
   * page to page. Pass the returned `cursor` back for the next page. A record that lives through the
   * whole walk is listed once (Redis may list one twice if its keyspace is resized meanwhile, as SCAN
   * does); one created, changed or deleted meanwhile may be listed or not. Summaries only: no
   * fingerprint, token or response bytes. Takes no lock that a request would wait for.
   */
  list?(input: ListInput): Promise<ListResult>;
  /**
   * Optional: delete records whose retention ended (`expiresAt <= now`) and resolve with how many.
   * Never deletes a live record, even one that replaced an expired one while the purge ran. A store
   * whose backend expires records itself (Redis PEXPIRE) may find nothing and resolve with 0.
   */
  purgeExpired?(input: PurgeExpiredInput): Promise<number>;
}

/** Input of `Store.list`. */
export interface ListInput {
  /** Records with `expiresAt <= now` are not listed: their retention ended. */
  now: number;
  /** At most this many records in the page; a positive integer. */
  limit: number;
  /** The `cursor` of the previous page; absent for the first one. Opaque: made by the store. */
  cursor?: string;
}

/** One page of `Store.list`. */
export interface ListResult {
  records: RecordSummary[];
  /** Present while there may be more records: pass it to `list` for the next page. Absent at the end. */
  cursor?: string;
}

/** A record as `Store.list` shows it: its state and times, and the size of its kept response. */
export interface RecordSummary {
  id: string;
  state: RecordState;
  leaseUntil: number;
  expiresAt: number;
  /** The kept response's status; `null` while in progress and when the response was too large to keep. */
  status: number | null;
  /** The kept response's body length in bytes; `null` exactly when `status` is. */
  bodyBytes: number | null;
}

/** Input of `Store.purgeExpired`. */
export interface PurgeExpiredInput {
  /** Records with `expiresAt <= now` are deleted: the engine's time, like every store call. */
  now: number;
  /** Delete at most this many (a positive integer). @default every expired record */
  limit?: number;
}

/** What `Store.health` reports. */
export interface StoreHealth {
  /** False while the store cannot take writes (it still may answer reads). */
  writable: boolean;
  /** Why it cannot, in words for a health page or a log line (never a key or a value). */
  detail?: string;
}

/**
 * A read-through cache of completed records, for `tieredStore`: a fast store (Redis) in front of a
 * durable one. Only completed records are ever put; they never change until their retention ends, so
 * a cache entry can never disagree with the durable record it copies.
 */
export interface RecordCache {
  readonly name: string;
  /** The live record, or `null` when there is none or its retention ended (`expiresAt <= now`). */
  get(input: GetInput): Promise<IdempotencyRecord | null>;
  /**
   * Keep a copy of a completed record until `record.expiresAt`, overwriting whatever the cache held
   * under its id. `now` is the engine's time, for stores that turn `expiresAt` into a relative TTL.
   */
  put(input: { record: IdempotencyRecord; now: number }): Promise<void>;
  close(): Promise<void>;
}
