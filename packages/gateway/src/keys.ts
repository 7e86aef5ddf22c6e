/**
 * `oncely keys`: look into a store. `show` finds one record by its key (through the store contract,
 * so it works on every store); `list` and `purge --expired` read the store's own layout
 * (record-browser.ts). Each returns the text to print; the CLI prints it.
 */

import { type IdempotencyRecord, parseIdempotencyKey } from '@oncely/core';
import { type RecordSummary, recordBrowser } from './record-browser.ts';
import { gatewayRecordId } from './scope.ts';
import type { OpenedStore } from './store-from-url.ts';

/** `keys list`: a table of live records, or JSON lines with `json`. */
export async function listKeys(
  opened: OpenedStore,
  options: { now: number; limit: number; json: boolean },
): Promise<string> {
  const records = await recordBrowser(opened).list(options);
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
  const deleted = await recordBrowser(opened).purgeExpired(options.now);
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
