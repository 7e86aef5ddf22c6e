/**
 * Rows to records. The driver's type parsing is not relied on: bigint columns may arrive as strings
 * (node-postgres' default), numbers or BigInts, and `bytea` as a Buffer or as `\x` hex text, so a pool
 * with custom type parsers reads the same records.
 */
import type { IdempotencyRecord, RecordState, StoredResponse } from '@oncely/core';

/** A row as `RECORD` in statements.ts selects it. */
export interface RecordRow {
  state: RecordState;
  fingerprint: string;
  token: string;
  lease_until: unknown;
  expires_at: unknown;
  attempt: unknown;
  /** NULL while in progress, and for a completed record whose response was not kept. */
  status: unknown;
  /** JSON text: an array of [name, value] pairs, in order, repeated names kept. */
  headers: string | null;
  body: unknown;
}

export function toRecord(id: string, row: RecordRow): IdempotencyRecord {
  return {
    id,
    state: row.state,
    fingerprint: row.fingerprint,
    token: row.token,
    leaseUntil: Number(row.lease_until),
    expiresAt: Number(row.expires_at),
    response: row.status === null ? null : toResponse(row),
  };
}

function toResponse(row: RecordRow): StoredResponse {
  return {
    status: Number(row.status),
    headers: row.headers === null ? [] : (JSON.parse(row.headers) as Array<[string, string]>),
    body: toBytes(row.body),
  };
}

/** A plain Uint8Array of its own (not a view into a driver buffer); an empty body stays empty. */
function toBytes(value: unknown): Uint8Array {
  if (value === null || value === undefined) return new Uint8Array(0);
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (typeof value === 'string' && value.startsWith('\\x')) {
    return new Uint8Array(Buffer.from(value.slice(2), 'hex'));
  }
  throw new TypeError(`postgresStore: unexpected bytea value of type ${typeof value}`);
}

/** The parameters `complete` stores: all NULL when the work ran but its response is not kept. */
export function responseParams(
  response: StoredResponse | null,
): [number | null, string | null, Uint8Array | null] {
  if (response === null) return [null, null, null];
  return [response.status, JSON.stringify(response.headers), response.body];
}
