import { randomUUID } from 'node:crypto';
import { backgroundSleep, bounded, StoreTimeoutError } from './bounded.ts';
import { cachePredicate } from './cache-policy.ts';
import { OncelyError } from './errors.ts';
import type { OncelyEvent, StoreOperation } from './events.ts';
import { isValidKey } from './key.ts';
import { keepLease } from './lease.ts';
import { type OncelyOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import { recordId } from './record-id.ts';
import type { AcquireResult, CompleteInput, IdempotencyRecord, StoredResponse } from './store.ts';
import { waiters } from './waiters.ts';

/** What `begin` needs: who asks (scope), the key they sent, and the fingerprint of what they asked. */
export interface BeginInput {
  /** Tenant: API key id, account id. Keys of one scope never replay another's. @default '' */
  scope?: string;
  /** The Idempotency-Key, already parsed (see `parseIdempotencyKey`). */
  key: string;
  /** Fingerprint of the request (see `fingerprint`); a reused key with another one is refused. */
  fingerprint: string;
  /**
   * Aborts when whoever asked stops waiting (the HTTP client went away). With `concurrency: 'wait'`,
   * a waiter whose signal aborts stops waiting and asking the store at once.
   */
  signal?: AbortSignal | undefined;
  /** This execution's bound, overriding the engine's `maxExecutionMs` (0: unbounded). */
  maxExecutionMs?: number | undefined;
}

/** How `commit` ended. */
export type CommitOutcome =
  /** The response is kept; retries replay it. */
  | 'stored'
  /** The work is recorded as done, but its response was over `maxResponseBytes`: retries get a 409. */
  | 'stored_without_body'
  /** The cache policy did not keep this response; the key is free, a retry runs again. */
  | 'released'
  /** Another owner took the key over after this one's lease lapsed; nothing was written. */
  | 'lease_lost'
  /** The store failed; the engine keeps the lease and retries in the background (see `drain`). */
  | 'pending'
  /** Fail-open execution with the store down: nothing is recorded. */
  | 'unrecorded'
  /**
   * The work ran past `maxExecutionMs` (its signal was aborted) and nothing was written: a retry had
   * taken its key over by the time it returned, or it failed and its key is left to lapse. A late
   * result lands, as `stored`, only while the key is still its own.
   */
  | 'timed_out';

/** You own the key: run the work, then `commit` its response, or `abort` if it failed. */
export interface ExecuteDecision {
  kind: 'execute';
  keyHash: string;
  /** True when the key was taken over from an owner whose lease lapsed (a crashed earlier attempt). */
  takeover: boolean;
  /** False only when the store was down and `failOpen` let the work run unprotected. */
  recorded: boolean;
  /** Aborts with `ERR_ONCELY_LEASE_LOST` if the lease can no longer be renewed: stop the work. */
  signal: AbortSignal;
  /** Whether the cache policy keeps a response with this status (`commit` releases the key otherwise). */
  keeps(status: number): boolean;
  /** Keep (or, per the cache policy, release) the outcome. Call once; later calls return the first result. */
  commit(response: StoredResponse): Promise<CommitOutcome>;
  /**
   * Like `commit`, but the completion is written by `complete` instead of the store: an `UPDATE` on the
   * connection that holds your own writes, so both commit in one transaction (see `@oncely/postgres`).
   * The engine builds the input (fenced by this owner's token, retention per `ttlMs`, body dropped
   * over `maxResponseBytes`); a response the cache policy does not keep is released through the store
   * as usual. There is no background retry: when `complete` throws, the error is yours (roll back,
   * then `abort()`), and the decision can be committed or aborted again.
   */
  commitWith(
    response: StoredResponse,
    complete: (input: CompleteInput) => Promise<boolean>,
  ): Promise<CommitOutcome>;
  /** The work failed without a response worth keeping: free the key so a retry runs again. */
  abort(reason?: unknown): Promise<void>;
  /**
   * The client that asked for the work went away before its response. Every adapter and the gateway
   * call this and nothing else on a disconnect: the work goes on, keeps its lease and its outcome is
   * committed for the retry. Reported as a `client_gone` event.
   */
  clientGone(): void;
}

/** The key was completed before: send this response again. */
export interface ReplayDecision {
  kind: 'replay';
  keyHash: string;
  response: StoredResponse;
}

/** Refuse the request with `error` (409 in progress, 409 not stored, 422 reused, 400 invalid, 503 store down). */
export interface RejectDecision {
  kind: 'reject';
  keyHash: string;
  error: OncelyError;
}

export type Decision = ExecuteDecision | ReplayDecision | RejectDecision;

/** The engine returned by `createOncely`. */
export interface Oncely {
  /** Decide what to do with a request: execute it, replay a stored response, or reject it. */
  begin(input: BeginInput): Promise<Decision>;
  /**
   * Run `work` at most once per key and return its (JSON-serialisable) result, also on replays.
   * Throws the `OncelyError` of a rejection; a throwing `work` frees the key for a retry.
   */
  run<T>(
    input: Omit<BeginInput, 'fingerprint'> & { fingerprint?: string },
    work: (signal: AbortSignal) => T | Promise<T>,
  ): Promise<T>;
  /** Wait until completions that are being retried in the background have landed or given up. */
  drain(): Promise<void>;
  /** The resolved options (defaults merged). */
  readonly options: Readonly<ResolvedOptions>;
}

const JSON_HEADERS: Array<[string, string]> = [['content-type', 'application/json']];
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** How `run` keeps a function's result: a 200 with its JSON (empty for `undefined`). */
export function runResultResponse(value: unknown): StoredResponse {
  const text = value === undefined ? '' : JSON.stringify(value);
  return { status: 200, headers: JSON_HEADERS, body: utf8Encoder.encode(text) };
}

/** The result `run` kept in `response` (see `runResultResponse`). */
export function runResultOf<T>(response: StoredResponse): T {
  const text = utf8Decoder.decode(response.body);
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

/**
 * Create the idempotency engine.
 * @example
 * const oncely = createOncely({ store: memoryStore() });
 * const charge = await oncely.run({ key: 'order_123:pay:1' }, () => provider.charge(order));
 */
export function createOncely(options: OncelyOptions): Oncely {
  const opts = resolveOptions(options);
  const { store } = opts;
  // Stores keep whole milliseconds (PostgreSQL bigint); a clock with sub-millisecond precision
  // (performance.now based) must not make one store refuse what another accepts.
  const clock = (): number => Math.floor(opts.clock());
  const keep = cachePredicate(opts.cache);
  const pending = new Set<Promise<unknown>>();
  // An acquire must answer with most of its lease left, or the new owner could lose it at once; but
  // never less than 100 ms, or a short lease would turn every slow moment of the store into a 503.
  // An acquire that answers after its lease ended anyway is caught below.
  const acquireTimeoutMs = Math.max(
    1,
    Math.min(opts.storeTimeoutMs, Math.max(100, Math.floor(opts.leaseMs / 2))),
  );
  const call = <T>(operation: StoreOperation | 'get', promise: Promise<T>): Promise<T> =>
    bounded(promise, opts.storeTimeoutMs, operation);

  const emit = (event: Omit<OncelyEvent, 'at'>): void => {
    if (!opts.onEvent) return;
    try {
      opts.onEvent({ ...event, at: clock() });
    } catch {
      // An observer must never change the outcome of a request.
    }
  };

  const watch = waiters({
    store,
    clock,
    pollMs: opts.waitPollMs,
    maxPollMs: Math.max(opts.waitPollMs, opts.waitPollMaxMs),
    storeTimeoutMs: opts.storeTimeoutMs,
    onStoreError: (keyHash, error) =>
      emit({ scope: '', keyHash, type: 'store_error', operation: 'get', error }),
  });

  const reject = (keyHash: string, error: OncelyError): RejectDecision => ({
    kind: 'reject',
    keyHash,
    error,
  });

  const inProgress = (id: string): RejectDecision =>
    reject(
      id,
      new OncelyError(
        'ERR_ONCELY_IN_PROGRESS',
        'A request with this Idempotency-Key is still being processed. Retry later.',
        { retryAfter: opts.retryAfterSeconds },
      ),
    );

  /**
   * An acquire the engine gave up on (it failed, timed out, or answered too late) may still have
   * written a record: a command already on the wire runs when a stalled server resumes. Nobody would
   * own that record, and retries would get 409 until its lease lapsed. So once the store answers,
   * free it with the same token; the release is fenced by the token, so it can only ever remove the
   * record this attempt created. Past the attempt's lease end there is nothing left to do: a retry
   * takes a lapsed lease over.
   */
  const freeOrphan = (
    scope: string,
    id: string,
    token: string,
    attempt: Promise<AcquireResult>,
    leaseUntil: number,
  ): void => {
    const base = { scope, keyHash: id };
    void (async () => {
      const outcome = await Promise.race([
        attempt.then(
          (result) => (result.acquired ? 'ours' : 'not_ours'),
          () => 'unknown',
        ),
        backgroundSleep(Math.max(0, leaseUntil - clock())).then(() => 'lapsed'),
      ]);
      if (outcome === 'not_ours' || outcome === 'lapsed') return;
      for (let delay = 50; clock() < leaseUntil; delay = Math.min(delay * 2, 1000)) {
        try {
          if (await call('release', store.release({ id, token }))) emit({ ...base, type: 'released' });
          return;
        } catch (error) {
          emit({ ...base, type: 'store_error', operation: 'release', error });
        }
        await backgroundSleep(delay);
      }
    })();
  };

  const storeUnavailable = (id: string, error: unknown): RejectDecision =>
    reject(
      id,
      new OncelyError(
        'ERR_ONCELY_STORE_UNAVAILABLE',
        unreachable(error)
          ? 'The idempotency store could not be reached; nothing was run.'
          : 'The idempotency store answered with an error (see the server log); nothing was run.',
        {
          cause: error,
          retryAfter: opts.retryAfterSeconds,
        },
      ),
    );

  async function begin(input: BeginInput): Promise<Decision> {
    const scope = input.scope ?? '';
    if (typeof input.key !== 'string' || !isValidKey(input.key)) {
      return reject(
        '',
        new OncelyError('ERR_ONCELY_KEY_INVALID', 'The key must be 1 to 255 printable ASCII characters.'),
      );
    }
    const id = recordId(scope, input.key);
    // A random fencing token; randomUUID draws from a cached entropy pool, one syscall per many.
    const token = randomUUID();
    const waitUntil = clock() + opts.maxWaitMs;
    const base = { scope, keyHash: id };

    for (;;) {
      const now = clock();
      const leaseUntil = now + opts.leaseMs;
      const attempt = store.acquire({
        id,
        fingerprint: input.fingerprint,
        token,
        now,
        leaseUntil,
        expiresAt: now + opts.ttlMs,
      });
      let result: AcquireResult;
      try {
        result = await bounded(attempt, acquireTimeoutMs, 'acquire');
      } catch (error) {
        emit({ ...base, type: 'store_error', operation: 'acquire', error });
        freeOrphan(scope, id, token, attempt, leaseUntil);
        if (opts.failOpen) {
          emit({ ...base, type: 'executed', takeover: false, recorded: false });
          return unrecorded(id);
        }
        return storeUnavailable(id, error);
      }

      let record = result.record;
      if (result.acquired && clock() >= record.leaseUntil) {
        // Won, but too late: the lease it asked for is over, and another request may take the key
        // over at any moment. Nothing ran; free it and say so, rather than start work that would
        // lose its lease at once.
        const error = new Error(`the store answered acquire after the lease it asked for had ended`);
        emit({ ...base, type: 'store_error', operation: 'acquire', error });
        freeOrphan(scope, id, token, attempt, record.leaseUntil + opts.leaseMs);
        return storeUnavailable(id, error);
      }
      if (result.acquired) {
        emit({ ...base, type: 'executed', takeover: result.takeover, recorded: true });
        return owner(scope, record, result.takeover, input.maxExecutionMs ?? opts.maxExecutionMs);
      }
      for (;;) {
        // A mismatch wins over every state: the key was used for another request, and no wait can fix that.
        if (record.fingerprint !== input.fingerprint) {
          emit({ ...base, type: 'mismatch' });
          return reject(
            id,
            new OncelyError(
              'ERR_ONCELY_KEY_REUSED',
              'This Idempotency-Key was already used with a different request.',
            ),
          );
        }
        if (record.state === 'completed') return replay(base, record);
        if (opts.concurrency === 'reject') {
          emit({ ...base, type: 'conflict' });
          return inProgress(id);
        }
        const waited = await watch.wait(record, waitUntil, input.signal);
        if (waited.kind !== 'changed') {
          emit({ ...base, type: 'conflict' });
          return inProgress(id);
        }
        // Completed: replay what the watcher read, without another round trip. Gone, released, or
        // its lease lapsed: try to take it (one acquire; one waiter wins, the others wait again).
        if (waited.record === null || waited.record.state !== 'completed') break;
        record = waited.record;
      }
    }
  }

  function replay(base: { scope: string; keyHash: string }, record: IdempotencyRecord): Decision {
    emit({ ...base, type: 'replayed', responseStored: record.response !== null });
    if (record.response === null) {
      return reject(
        base.keyHash,
        new OncelyError(
          'ERR_ONCELY_RESPONSE_NOT_STORED',
          'The request with this Idempotency-Key already ran to completion, but its response was too large to keep. It will not run again.',
        ),
      );
    }
    return { kind: 'replay', keyHash: base.keyHash, response: record.response };
  }

  function unrecorded(id: string): ExecuteDecision {
    return {
      kind: 'execute',
      keyHash: id,
      takeover: false,
      recorded: false,
      signal: new AbortController().signal,
      keeps: () => false,
      commit: async () => 'unrecorded',
      commitWith: async () => 'unrecorded',
      abort: async () => {},
      clientGone: () => {},
    };
  }

  function owner(
    scope: string,
    record: IdempotencyRecord,
    takeover: boolean,
    maxExecutionMs: number,
  ): ExecuteDecision {
    const { id, token } = record;
    const base = { scope, keyHash: id };
    let settled: Promise<CommitOutcome> | undefined;
    // Past the execution bound: the signal aborted and renewals stopped, but what the work returns
    // is still written if the key is still ours (no retry took it over): fenced by the token, as
    // for any owner whose lease lapsed, and the only result there is. Refused, it is `timed_out`.
    let timedOut = false;
    const deadline = maxExecutionMs > 0 ? clock() + maxExecutionMs : Number.POSITIVE_INFINITY;
    const lease = keepLease({
      store,
      id,
      token,
      leaseMs: opts.leaseMs,
      leaseUntil: record.leaseUntil,
      expiresAt: record.expiresAt,
      clock,
      storeTimeoutMs: opts.storeTimeoutMs,
      // The lease protects against a dead owner; this bound against a live one whose work never
      // settles (a lost promise, a provider call without a timeout), which would otherwise renew its
      // lease until the record's retention ends. Past the bound the work is abandoned: its signal
      // aborts, renewals stop and the key frees when the lease lapses. Not at once: the engine cannot
      // show that the abandoned work started no side effect, and a lapse leaves it a lease to notice
      // its signal. Its late result lands only while no retry has taken the key over.
      deadline,
      onDeadline: () => {
        // Finished, its completion being retried: that is no hung work (the retry has its own cap).
        if (settled !== undefined) return undefined;
        timedOut = true;
        emit({ ...base, type: 'execution_timeout' });
        return new OncelyError(
          'ERR_ONCELY_EXECUTION_TIMEOUT',
          `The work did not finish within ${maxExecutionMs} ms and was abandoned; its key frees when its lease lapses.`,
        );
      },
      onStoreError: (error) => emit({ ...base, type: 'store_error', operation: 'extend', error }),
      onLost: () => emit({ ...base, type: 'lease_lost' }),
    });

    const release = async (status?: number): Promise<boolean> => {
      lease.stop();
      try {
        const ok = await call('release', store.release({ id, token }));
        if (ok) emit({ ...base, type: 'released', ...(status === undefined ? {} : { status }) });
        else emit({ ...base, type: 'lease_lost' });
        return ok;
      } catch (error) {
        // The key stays in progress until its lease lapses; then a retry takes it over.
        emit({ ...base, type: 'store_error', operation: 'release', error });
        return false;
      } finally {
        watch.changed(id);
      }
    };

    const completeInput = (response: StoredResponse): CompleteInput => {
      const now = clock();
      const withBody = response.body.byteLength <= opts.maxResponseBytes;
      return { id, token, response: withBody ? response : null, now, expiresAt: now + opts.ttlMs };
    };
    const landed = (response: StoredResponse, ok: boolean): CommitOutcome => {
      lease.stop();
      if (!ok) {
        emit({ ...base, type: 'lease_lost' });
        return timedOut ? 'timed_out' : 'lease_lost';
      }
      emit({ ...base, type: 'completed', status: response.status });
      watch.changed(id);
      return response.body.byteLength <= opts.maxResponseBytes ? 'stored' : 'stored_without_body';
    };

    // Through the caller's transaction: one attempt, its failure is the caller's to roll back.
    const completeWith = async (
      response: StoredResponse,
      write: (input: CompleteInput) => Promise<boolean>,
    ): Promise<CommitOutcome> => {
      if (!keep(response.status)) {
        return (await release(response.status)) ? 'released' : 'lease_lost';
      }
      return landed(response, await write(completeInput(response)));
    };

    const complete = async (response: StoredResponse): Promise<CommitOutcome> => {
      if (!keep(response.status)) {
        // Abandoned work that failed is left to its lease, like any abandoned work (see above).
        if (timedOut) return 'timed_out';
        return (await release(response.status)) ? 'released' : 'lease_lost';
      }
      const input = completeInput(response);
      try {
        return landed(response, await call('complete', store.complete(input)));
      } catch (error) {
        emit({ ...base, type: 'store_error', operation: 'complete', error });
      }
      // The work has run. Never release here: that would invite a second run. Keep the lease alive
      // (renewal goes on) and retry until the completion lands or the lease is gone, for as long as
      // the execution bound allows and at least three leases: a store that keeps refusing this one
      // write while it renews must not hold the key until its retention ends.
      const giveUpAt = Math.max(
        deadline === Number.POSITIVE_INFINITY ? 0 : deadline,
        clock() + 3 * opts.leaseMs,
      );
      const retry = (async (): Promise<CommitOutcome> => {
        for (
          let delay = 50;
          lease.held && clock() < giveUpAt;
          delay = Math.min(delay * 2, Math.max(50, Math.floor(opts.leaseMs / 3)))
        ) {
          await backgroundSleep(delay);
          if (!lease.held) break;
          try {
            let ok = await call('complete', store.complete(input));
            // An earlier attempt that timed out or lost its reply may have landed: then the record is
            // completed under our token, and this attempt was refused only because of that.
            if (!ok) ok = await completedByUs();
            return landed(response, ok);
          } catch (error) {
            emit({ ...base, type: 'store_error', operation: 'complete', error });
          }
        }
        // Gave up, or the lease went (a renewal refused: possibly because the first attempt landed
        // after all and the record is completed). Look once before saying it was lost.
        lease.stop();
        try {
          if (await completedByUs()) return landed(response, true);
        } catch (error) {
          emit({ ...base, type: 'store_error', operation: 'get', error });
        }
        emit({ ...base, type: 'lease_lost' });
        return 'lease_lost';
      })();
      pending.add(retry);
      void retry.finally(() => pending.delete(retry));
      return 'pending';
    };
    const completedByUs = async (): Promise<boolean> => {
      const current = await call('get', store.get({ id, now: clock() }));
      return current !== null && current.state === 'completed' && current.token === token;
    };

    return {
      kind: 'execute',
      keyHash: id,
      takeover,
      recorded: true,
      signal: lease.signal,
      keeps: (status) => keep(status),
      commit(response) {
        settled ??= complete(response);
        return settled;
      },
      commitWith(response, write) {
        if (settled) return settled;
        const attempt = completeWith(response, write);
        settled = attempt;
        // A failed write leaves the decision open, so the caller can abort (or try again).
        attempt.catch(() => {
          if (settled === attempt) settled = undefined;
        });
        return attempt;
      },
      async abort() {
        // Abandoned at the bound: the key frees when the lease lapses, not at once (see above).
        settled ??= timedOut
          ? Promise.resolve('timed_out')
          : release().then((ok) => (ok ? 'released' : 'lease_lost'));
        await settled;
      },
      clientGone() {
        // The one client-disconnect policy (DESIGN §3): the client's leaving says nothing about the
        // work, which may already have charged a card. The owner keeps its lease and records the
        // outcome, so the client's retry replays it; freeing the key now would let that retry run
        // alongside the work. Work that never finishes is bounded like any other (lease, `signal`).
        if (settled === undefined && lease.held) emit({ ...base, type: 'client_gone' });
      },
    };
  }

  async function run<T>(
    input: Omit<BeginInput, 'fingerprint'> & { fingerprint?: string },
    work: (signal: AbortSignal) => T | Promise<T>,
  ): Promise<T> {
    const decision = await begin({ ...input, fingerprint: input.fingerprint ?? '' });
    if (decision.kind === 'reject') throw decision.error;
    if (decision.kind === 'replay') return runResultOf<T>(decision.response);
    let value: T;
    try {
      value = await work(decision.signal);
    } catch (error) {
      await decision.abort(error);
      throw error;
    }
    await decision.commit(runResultResponse(value));
    return value;
  }

  async function drain(): Promise<void> {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  }

  return { begin, run, drain, options: opts };
}

/** Codes of a store that cannot be reached, as opposed to one that answered with an error. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * Whether a store failure means "could not be reached" (a connection failure, a timeout, a closed
 * client) rather than an answer that was an error: a missing table (`migrate()` never ran), a
 * permission, a wrong schema. The problem says which, so an operator is not sent to look at the
 * network when the fix is a migration; the error itself is in the `store_error` event.
 */
function unreachable(error: unknown): boolean {
  if (error instanceof StoreTimeoutError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  const message = error instanceof Error ? error.message : String(error);
  // ioredis and node-redis say so in words; pg's pool too ("Connection terminated").
  return /connection|closed|timeout|timed out|not connected|socket/i.test(message);
}
