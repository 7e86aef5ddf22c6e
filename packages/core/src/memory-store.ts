import type {
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
  RecordSummary,
  ReleaseInput,
  Store,
  StoredResponse,
} from './store.ts';

export interface MemoryStoreOptions {
  /** How often expired records are dropped; 0 disables (expired records are still never returned). @default 60_000 */
  sweepIntervalMs?: number;
  /** Clock for the sweeper only; records get their times from the engine. @default Date.now */
  clock?: () => number;
}

/**
 * An in-process store for tests and single-process development. Not durable, not shared between
 * processes. Each step runs without awaiting, so it is atomic on the one event loop. It can also be
 * the cache of a `tieredStore` (in tests: the real one is Redis).
 * @example
 * const oncely = createOncely({ store: memoryStore() });
 */
export function memoryStore(options: MemoryStoreOptions = {}): Store &
  RecordCache & {
    readonly size: number;
    list(input: ListInput): Promise<ListResult>;
    purgeExpired(input: PurgeExpiredInput): Promise<number>;
  } {
  const records = new Map<string, IdempotencyRecord>();
  const clock = options.clock ?? Date.now;
  const sweepIntervalMs = options.sweepIntervalMs ?? 60_000;
  let closed = false;
  const timer =
    sweepIntervalMs > 0
      ? setInterval(() => {
          const now = clock();
          for (const [id, record] of records) if (record.expiresAt <= now) records.delete(id);
        }, sweepIntervalMs)
      : undefined;
  // Deno and Workers return a number from setInterval; only Node's timers can be unref'd.
  (timer as { unref?: () => void } | undefined)?.unref?.();

  const live = (id: string, now: number): IdempotencyRecord | undefined => {
    const record = records.get(id);
    return record && record.expiresAt > now ? record : undefined;
  };
  const owned = (id: string, token: string): IdempotencyRecord | undefined => {
    const record = records.get(id);
    return record && record.state === 'in_progress' && record.token === token ? record : undefined;
  };
  const open = (): void => {
    if (closed) throw new Error('memoryStore is closed');
  };

  return {
    name: 'memory',
    get size() {
      return records.size;
    },
    async acquire(input: AcquireInput): Promise<AcquireResult> {
      open();
      const existing = live(input.id, input.now);
      const takeover =
        existing !== undefined &&
        existing.state === 'in_progress' &&
        existing.leaseUntil <= input.now &&
        existing.fingerprint === input.fingerprint;
      if (existing && !takeover) return { acquired: false, record: copy(existing) };
      const record: IdempotencyRecord = {
        id: input.id,
        state: 'in_progress',
        fingerprint: input.fingerprint,
        token: input.token,
        leaseUntil: input.leaseUntil,
        expiresAt: input.expiresAt,
        response: null,
      };
      records.set(input.id, record);
      return { acquired: true, record: copy(record), takeover };
    },
    async complete(input: CompleteInput): Promise<boolean> {
      open();
      const record = owned(input.id, input.token);
      if (!record) return false;
      record.state = 'completed';
      record.response = input.response && copyResponse(input.response);
      record.expiresAt = input.expiresAt;
      return true;
    },
    async extend(input: ExtendInput): Promise<boolean> {
      open();
      const record = owned(input.id, input.token);
      if (!record) return false;
      record.leaseUntil = input.leaseUntil;
      return true;
    },
    async release(input: ReleaseInput): Promise<boolean> {
      open();
      if (!owned(input.id, input.token)) return false;
      records.delete(input.id);
      return true;
    },
    async get(input: GetInput): Promise<IdempotencyRecord | null> {
      open();
      const record = live(input.id, input.now);
      return record ? copy(record) : null;
    },
    // By id, so that a cursor (the last id of a page) stays valid whatever is written meanwhile.
    async list(input: ListInput): Promise<ListResult> {
      open();
      const limit = pageLimit(input.limit);
      const after = input.cursor ?? '';
      const ids: string[] = [];
      for (const [id, record] of records) if (id > after && record.expiresAt > input.now) ids.push(id);
      ids.sort();
      const page = ids.slice(0, limit);
      const result: ListResult = { records: page.map((id) => summarize(records.get(id)!)) };
      if (ids.length > limit) result.cursor = page[page.length - 1]!;
      return result;
    },
    async purgeExpired(input: PurgeExpiredInput): Promise<number> {
      open();
      const limit = input.limit === undefined ? Number.POSITIVE_INFINITY : pageLimit(input.limit);
      let deleted = 0;
      for (const [id, record] of records) {
        if (deleted >= limit) break;
        if (record.expiresAt <= input.now) {
          records.delete(id);
          deleted++;
        }
      }
      return deleted;
    },
    async put({ record }): Promise<void> {
      open();
      records.set(record.id, copy(record));
    },
    async close(): Promise<void> {
      closed = true;
      if (timer) clearInterval(timer);
    },
  };
}

function summarize(record: IdempotencyRecord): RecordSummary {
  const { response } = record;
  return {
    id: record.id,
    state: record.state,
    leaseUntil: record.leaseUntil,
    expiresAt: record.expiresAt,
    status: response === null ? null : response.status,
    bodyBytes: response === null ? null : response.body.byteLength,
  };
}

function pageLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`memoryStore: limit must be a positive integer, got ${String(limit)}`);
  }
  return limit;
}

// Copies keep callers from mutating stored state through a returned object, as a real store would.
function copy(record: IdempotencyRecord): IdempotencyRecord {
  return { ...record, response: record.response && copyResponse(record.response) };
}

function copyResponse(response: StoredResponse): StoredResponse {
  return {
    status: response.status,
    headers: response.headers.map(([name, value]) => [name, value]),
    body: new Uint8Array(response.body),
  };
}
