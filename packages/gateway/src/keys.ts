/**
 * `oncely keys`: look into a store. Everything goes through the store: `show` finds one record by its
 * key (`get`, so it works on every store), `list` and `purge --expired` use the optional `list` and
 * `purgeExpired` of the store contract, which each store implements for its own layout. Each
 * returns the text to print; the CLI prints it.
 */

import { type IdempotencyRecord, parseIdempotencyKey, type RecordSummary, type Store } from '@oncely/core';
import { gatewayRecordId } from './scope.ts';
import type { OpenedStore } from './store-from-url.ts';

/** The store cannot do what was asked: the message says why. */
export class NotSupportedError extends Error {
  override readonly name = 'NotSupportedError';
}

/**
 * The store to list or purge. A memory store opened here is not the gateway's: it lives inside one
 * gateway process and is empty in any other, so listing it would say "no records" and mean nothing.
 */
function inspected(opened: OpenedStore): Store {
  if (opened.spec.kind === 'memory') {
    throw new NotSupportedError(
      'the memory store lives inside one gateway process: another process (this one) cannot see its records',
    );
  }
  return opened.store;
}

/** `keys list`: a table of live records, or JSON lines with `json`, in the store's own order. */
export async function listKeys(
  opened: OpenedStore,
  options: { now: number; limit: number; json: boolean },
): Promise<string> {
  const store = inspected(opened);
  if (typeof store.list !== 'function') {
    throw new NotSupportedError(`this store (${store.name}) cannot be listed`);
  }
  // Pages until `limit` records: a store may hand back fewer per page than it was asked for.
  const records: RecordSummary[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({
      now: options.now,
      limit: options.limit - records.length,
      ...(cursor === undefined ? {} : { cursor }),
    });
    records.push(...page.records);
    cursor = page.cursor;
  } while (cursor !== undefined && records.length < options.limit);
  if (options.json) return records.map((r) => `${JSON.stringify(jsonSummary(r))}\n`).join('');
  if (records.length === 0) return 'no live records\n';
  const rows = records.map((r) => [
    r.id,
    r.state,
    r.status === null ? '-' : String(r.status),
    r.bodyBytes === null ? '-' : String(r.bodyBytes),
    new Date(r.expiresAt).toISOString(),
    r.state === 'in_progress' ? new Date(r.leaseUntil).toISOString() : '-',
  ]);
  return table([['ID', 'STATE', 'STATUS', 'BYTES', 'EXPIRES', 'LEASE UNTIL'], ...rows]);
}

/** `keys purge --expired`: delete records whose retention ended. */
export async function purgeExpiredKeys(opened: OpenedStore, options: { now: number }): Promise<string> {
  const store = inspected(opened);
  if (typeof store.purgeExpired !== 'function') {
    throw new NotSupportedError(`this store (${store.name}) cannot purge expired records`);
  }
  const deleted = await store.purgeExpired({ now: options.now });
  return `deleted ${deleted} expired record${deleted === 1 ? '' : 's'}\n`;
}

/** What `keys show` found. */
export interface ShowResult {
  found: boolean;
  text: string;
}

/**
 * `keys show <key> [--scope <value>]`: the record the proxy keeps for a key. `scope` is the raw value
 * of the proxy's `--scope-header` as the client sent it; it is hashed exactly as the proxy hashes it.
 */
export async function showKey(
  opened: OpenedStore,
  options: { key: string; scope?: string | undefined; now: number; body: boolean },
): Promise<ShowResult> {
  // The same parser as the proxy: `"abc"` and `abc` name one key.
  const parsed = parseIdempotencyKey(options.key);
  if (!parsed.ok) {
    const why = parsed.reason === 'missing' ? 'it is empty' : parsed.detail;
    throw new RangeError(`"${options.key}" is not a valid Idempotency-Key: ${why}`);
  }
  const id = gatewayRecordId(parsed.key, options.scope);
  const record = await opened.store.get({ id, now: options.now });
  if (record === null) {
    const scoped = options.scope === undefined ? 'without --scope' : 'with this --scope';
    return { found: false, text: `no live record for this key ${scoped} (record id ${id})\n` };
  }
  return { found: true, text: `${JSON.stringify(describeRecord(record, options.body), null, 2)}\n` };
}

function describeRecord(record: IdempotencyRecord, withBody: boolean): Record<string, unknown> {
  const response = record.response;
  return {
    id: record.id,
    state: record.state,
    fingerprint: record.fingerprint,
    leaseUntil: new Date(record.leaseUntil).toISOString(),
    expiresAt: new Date(record.expiresAt).toISOString(),
    response:
      response === null
        ? null
        : {
            status: response.status,
            headers: response.headers,
            bodyBytes: response.body.byteLength,
            ...(withBody ? bodyOf(response.body) : {}),
          },
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body as text when it is UTF-8, else base64: JSON output stays JSON either way. */
function bodyOf(body: Uint8Array): { body: string; bodyEncoding: 'utf8' | 'base64' } {
  try {
    return { body: utf8.decode(body), bodyEncoding: 'utf8' };
  } catch {
    return { body: Buffer.from(body).toString('base64'), bodyEncoding: 'base64' };
  }
}

function jsonSummary(r: RecordSummary): Record<string, unknown> {
  return {
    id: r.id,
    state: r.state,
    status: r.status,
    bodyBytes: r.bodyBytes,
    expiresAt: new Date(r.expiresAt).toISOString(),
    leaseUntil: new Date(r.leaseUntil).toISOString(),
  };
}

function table(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map(
      (row) =>
        `${row
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}
