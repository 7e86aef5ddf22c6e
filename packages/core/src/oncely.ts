import { randomBytes } from 'node:crypto';
import { cachePredicate } from './cache-policy.ts';
import { OncelyError } from './errors.ts';
import type { OncelyEvent, StoreOperation } from './events.ts';
import { isValidKey } from './key.ts';
import { type OncelyOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import { recordId } from './record-id.ts';
import type { CompleteInput, IdempotencyRecord, StoredResponse } from './store.ts';

/** What `begin` needs: who asks (scope), the key they sent, and the fingerprint of what they asked. */
export interface BeginInput {
  /** Tenant: API key id, account id. Keys of one scope never replay another's. @default '' */
  scope?: string;
  /** The Idempotency-Key, already parsed (see `parseIdempotencyKey`). */
  key: string;
  /** Fingerprint of the request (see `fingerprint`); a reused key with another one is refused. */
  fingerprint: string;
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
  | 'unrecorded';

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

  const emit = (event: Omit<OncelyEvent, 'at'>): void => {
    if (!opts.onEvent) return;
    try {
      opts.onEvent({ ...event, at: clock() });
    } catch {
      // An observer must never change the outcome of a request.
    }
  };

  const reject = (keyHash: string, error: OncelyError): RejectDecision => ({
    kind: 'reject',
    keyHash,
    error,
  });

  async function begin(input: BeginInput): Promise<Decision> {
    const scope = input.scope ?? '';
    if (typeof input.key !== 'string' || !isValidKey(input.key)) {
      return reject(
        '',
        new OncelyError('ERR_ONCELY_KEY_INVALID', 'The key must be 1 to 255 printable ASCII characters.'),
      );
    }
    const id = recordId(scope, input.key);
    const token = randomBytes(16).toString('hex');
    const waitUntil = clock() + opts.maxWaitMs;
    const base = { scope, keyHash: id };

    for (;;) {
      const now = clock();
      let result: Awaited<ReturnType<typeof store.acquire>>;
      try {
        result = await store.acquire({
          id,
          fingerprint: input.fingerprint,
          token,
          now,
          leaseUntil: now + opts.leaseMs,
          expiresAt: now + opts.ttlMs,
        });
      } catch (error) {
        emit({ ...base, type: 'store_error', operation: 'acquire', error });
        if (opts.failOpen) {
          emit({ ...base, type: 'executed', takeover: false, recorded: false });
          return unrecorded(id);
        }
        return reject(
          id,
          new OncelyError(
            'ERR_ONCELY_STORE_UNAVAILABLE',
            'The idempotency store could not be reached; nothing was run.',
            {
              cause: error,
              retryAfter: opts.retryAfterSeconds,
            },
          ),
        );
      }

      if (result.acquired) {
        emit({ ...base, type: 'executed', takeover: result.takeover, recorded: true });
        return owner(scope, result.record, result.takeover);
      }
      const record = result.record;
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
      if (record.state === 'completed') {
        emit({ ...base, type: 'replayed', responseStored: record.response !== null });
        if (record.response === null) {
          return reject(
            id,
            new OncelyError(
              'ERR_ONCELY_RESPONSE_NOT_STORED',
              'The request with this Idempotency-Key already ran to completion, but its response was too large to keep. It will not run again.',
            ),
          );
        }
        return { kind: 'replay', keyHash: id, response: record.response };
      }
      const remaining = waitUntil - clock();
      if (opts.concurrency === 'reject' || remaining <= 0) {
        emit({ ...base, type: 'conflict' });
        return reject(
          id,
          new OncelyError(
            'ERR_ONCELY_IN_PROGRESS',
            'A request with this Idempotency-Key is still being processed. Retry later.',
            {
              retryAfter: opts.retryAfterSeconds,
            },
          ),
        );
      }
      // Waiting: poll with acquire, which is one round trip and also covers the first request's
      // release (we then run) and its crash (its lease lapses and we take over).
      await sleep(Math.min(opts.waitPollMs, remaining));
    }
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
    };
  }

  function owner(scope: string, record: IdempotencyRecord, takeover: boolean): ExecuteDecision {
    const { id, token } = record;
    const base = { scope, keyHash: id };
    const controller = new AbortController();
    let leaseUntil = record.leaseUntil;
    // The store forgets the record at its retention end, whatever its state: a lease never outlives it.
    const expiresAt = record.expiresAt;
    let renewing = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    let settled: Promise<CommitOutcome> | undefined;

    const storeError = (operation: StoreOperation, error: unknown): void =>
      emit({ ...base, type: 'store_error', operation, error });

    const loseLease = (): void => {
      if (!renewing) return;
      stopRenewing();
      emit({ ...base, type: 'lease_lost' });
      controller.abort(
        new OncelyError(
          'ERR_ONCELY_LEASE_LOST',
          'The lease on this key could not be renewed; another request may own it now.',
        ),
      );
    };

    // Renew every leaseMs/3, so two renewals may fail (a slow store, a GC pause) before the lease lapses.
    // setTimeout after each renewal, not setInterval: renewals never overlap.
    const scheduleRenewal = (): void => {
      timer = setTimeout(renew, Math.max(1, Math.floor(opts.leaseMs / 3)));
      timer.unref?.();
    };
    // Once the lease end passes without a renewal that landed, another request may own the key: abort
    // the work then, even while a renewal still hangs (a pool with no free connection, a client
    // queueing commands while it reconnects) and so can neither succeed nor fail.
    const armWatchdog = (): void => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(loseLease, Math.max(0, leaseUntil - clock()));
      (watchdog as { unref?: () => void }).unref?.();
    };
    const renew = async (): Promise<void> => {
      if (!renewing) return;
      const now = clock();
      const next = Math.min(now + opts.leaseMs, expiresAt);
      if (next <= leaseUntil) {
        // Retention ends before this lease could be extended: the record is replaced then. Let the
        // watchdog abort the work at the lease end instead of renewing into nothing.
        return;
      }
      try {
        const ok = await store.extend({ id, token, now, leaseUntil: next });
        if (!renewing) return;
        if (!ok) return loseLease();
        leaseUntil = next;
        armWatchdog();
      } catch (error) {
        storeError('extend', error);
        // We cannot know whether the store still sees us as owner; past our own lease end we must assume not.
        if (clock() >= leaseUntil) return loseLease();
      }
      if (renewing) scheduleRenewal();
    };
    const stopRenewing = (): void => {
      renewing = false;
      if (timer) clearTimeout(timer);
      if (watchdog) clearTimeout(watchdog);
    };
    armWatchdog();
    scheduleRenewal();

    const release = async (status?: number): Promise<boolean> => {
      stopRenewing();
      try {
        const ok = await store.release({ id, token });
        if (ok) emit({ ...base, type: 'released', ...(status === undefined ? {} : { status }) });
        else emit({ ...base, type: 'lease_lost' });
        return ok;
      } catch (error) {
        // The key stays in progress until its lease lapses; then a retry takes it over.
        storeError('release', error);
        return false;
      }
    };

    const completeInput = (response: StoredResponse): CompleteInput => {
      const now = clock();
      const withBody = response.body.byteLength <= opts.maxResponseBytes;
      return { id, token, response: withBody ? response : null, now, expiresAt: now + opts.ttlMs };
    };
    const landed = (response: StoredResponse, ok: boolean): CommitOutcome => {
      stopRenewing();
      if (!ok) {
        emit({ ...base, type: 'lease_lost' });
        return 'lease_lost';
      }
      emit({ ...base, type: 'completed', status: response.status });
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
        return (await release(response.status)) ? 'released' : 'lease_lost';
      }
      const attempt = (): Promise<boolean> => store.complete(completeInput(response));
      try {
        return landed(response, await attempt());
      } catch (error) {
        storeError('complete', error);
      }
      // The work has run. Never release here: that would invite a second run. Keep the lease alive
      // (renewal goes on) and retry until the completion lands or the lease is gone.
      const retry = (async () => {
        for (
          let delay = 50;
          renewing;
          delay = Math.min(delay * 2, Math.max(50, Math.floor(opts.leaseMs / 3)))
        ) {
          await sleep(delay);
          if (!renewing) break;
          try {
            return landed(response, await attempt());
          } catch (error) {
            storeError('complete', error);
          }
        }
        return 'lease_lost' as const;
      })();
      pending.add(retry);
      void retry.finally(() => pending.delete(retry));
      return 'pending';
    };

    return {
      kind: 'execute',
      keyHash: id,
      takeover,
      recorded: true,
      signal: controller.signal,
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
        settled ??= release().then((ok) => (ok ? 'released' : 'lease_lost'));
        await settled;
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
