/**
 * Every statement the store sends, built once per table. Each store step is ONE statement, so one
 * round trip and one implicit transaction: there is never a transaction left open between steps.
 */
import type { TableName } from './table-name.ts';

export interface Statements {
  /** $1 namespace, $2 id, $3 fingerprint, $4 token, $5 now, $6 leaseUntil, $7 expiresAt. */
  acquire: string;
  /** $1 namespace, $2 id, $3 now. */
  get: string;
  /** $1 namespace, $2 id, $3 token, $4 expiresAt, $5 status, $6 headers (JSON text), $7 body. */
  complete: string;
  /** Like `complete`, plus $8: the session's idle-in-transaction limit, in ms, until COMMIT. */
  completeInTransaction: string;
  /** $1 namespace, $2 id, $3 token, $4 leaseUntil. */
  extend: string;
  /** $1 namespace, $2 id, $3 token. */
  release: string;
  /** $1 namespace, $2 now, $3 batch size. */
  sweep: string;
  /** $1 namespace, $2 the last id of the previous page ('' for the first), $3 now, $4 rows. */
  list: string;
}

/** What every read returns; `headers` as text, so the driver's JSON parsing (if any) is bypassed. */
const RECORD =
  'state, fingerprint, token, lease_until, expires_at, attempt, status, headers::text AS headers, body';

// The owner's fence: complete, extend and release act only for the current token of a running record.
const OWNER = "namespace = $1 AND id = $2 AND token = $3 AND state = 'in_progress'";

export function statements(table: TableName): Statements {
  const t = table.sql;

  // When acquire may take the existing row: its retention ended (it is gone, whatever it held), or it
  // is a running record of the same request whose owner's lease ended (a crashed owner's work is
  // picked up by a retry of that request only; another fingerprint gets the record and a 422).
  const expired = 'r.expires_at <= $5';
  const lapsed = "r.state = 'in_progress' AND r.lease_until <= $5 AND r.fingerprint = excluded.fingerprint";
  const take = `(${expired} OR (${lapsed}))`;
  const kept = (column: string, value: string): string =>
    `${column} = CASE WHEN ${take} THEN ${value} ELSE r.${column} END`;

  return {
    // ONE statement for all three outcomes: insert a new record, take over (or replace) the
    // existing one, or return it untouched.
    //
    // Why DO UPDATE always, with CASE keeping the old values when the row is not taken, rather than
    // `DO UPDATE ... WHERE <take>`: a conditional DO UPDATE returns no row when it does not update,
    // and any read of the table in the same statement (a CTE, a UNION, a sub-select) uses the
    // statement's snapshot, which under READ COMMITTED may predate the very row that caused the
    // conflict (a concurrent acquire that committed a moment ago). Measured: 50 concurrent acquires of
    // a fresh key, 100 rounds: that shape returned no row for 3,823 of the 5,000 calls. ON CONFLICT
    // DO UPDATE instead locks the conflicting row in its latest committed version (waiting for an
    // uncommitted insert to commit or roll back), so RETURNING always yields the row as it now is:
    // ours if we took it, the winner's otherwise. The price is a new row version for every acquire
    // that does not take the key (a replay, a 409): a HOT update, since no indexed column changes
    // (about 170 bytes of WAL against about 100 for a lock alone).
    //
    // Whether we took it: the returned token is ours (tokens are random per call). Whether that was a
    // takeover of a lapsed owner: `attempt` counts the owners a record has had, and restarts at 1 when
    // an expired record is replaced, so it is > 1 exactly after a takeover.
    acquire: `INSERT INTO ${t} AS r (namespace, id, state, fingerprint, token, lease_until, expires_at, attempt)
VALUES ($1, $2, 'in_progress', $3, $4, $6, $7, 1)
ON CONFLICT (namespace, id) DO UPDATE SET
  ${kept('state', "'in_progress'")},
  ${kept('fingerprint', 'excluded.fingerprint')},
  ${kept('token', 'excluded.token')},
  ${kept('lease_until', 'excluded.lease_until')},
  ${kept('expires_at', 'excluded.expires_at')},
  attempt = CASE WHEN ${expired} THEN 1 WHEN ${lapsed} THEN r.attempt + 1 ELSE r.attempt END,
  ${kept('status', 'NULL')},
  ${kept('headers', 'NULL')},
  ${kept('body', 'NULL')}
RETURNING ${RECORD}`,

    // A row past its retention may linger until the sweeper reaches it; it is already gone.
    get: `SELECT ${RECORD} FROM ${t} WHERE namespace = $1 AND id = $2 AND expires_at > $3`,

    complete: `UPDATE ${t} SET state = 'completed', expires_at = $4, status = $5, headers = $6, body = $7
WHERE ${OWNER}`,

    // The completion of transactional mode, on the caller's connection inside its transaction. From
    // this UPDATE to COMMIT the record's row is locked, and every acquire of the key waits for it. If
    // the client then goes silent without closing its socket (a frozen host, a partition), the server
    // would keep the lock until TCP keepalive gives up, possibly hours. SET LOCAL of
    // idle_in_transaction_session_timeout, in the same statement so it costs no round trip, makes the
    // server end such a session (rolling back) once COMMIT is that late. It is local to this
    // transaction and applies only from here on: the work before it may take as long as it needs.
    completeInTransaction: `WITH guard AS MATERIALIZED (
  SELECT set_config('idle_in_transaction_session_timeout', $8, true) AS timeout
)
UPDATE ${t} SET state = 'completed', expires_at = $4, status = $5, headers = $6, body = $7
FROM guard
WHERE ${OWNER}`,

    extend: `UPDATE ${t} SET lease_until = $4 WHERE ${OWNER}`,

    release: `DELETE FROM ${t} WHERE ${OWNER}`,

    // One batch: lock up to $3 expired rows of this namespace that nobody else holds, and delete
    // them. SKIP LOCKED lets several sweepers (every process runs one) split the rows between them
    // instead of queueing, and never waits for an acquire that holds a row. FOR UPDATE re-checks the
    // condition on the latest version of each row, so a row that an acquire replaced with a live
    // record a moment ago is left alone; the outer condition repeats it as a second guard.
    sweep: `WITH doomed AS (
  SELECT id FROM ${t} WHERE namespace = $1 AND expires_at <= $2 LIMIT $3 FOR UPDATE SKIP LOCKED
)
DELETE FROM ${t} AS r USING doomed
WHERE r.namespace = $1 AND r.id = doomed.id AND r.expires_at <= $2`,

    // One page of live records by id: a range scan of the primary key from the last id of the previous
    // page, so a page costs the same however deep the walk. A plain read under MVCC: it locks nothing
    // and waits for no writer. The body's length, never its bytes.
    list: `SELECT id, state, lease_until, expires_at, status, octet_length(body) AS body_bytes FROM ${t}
WHERE namespace = $1 AND id > $2 AND expires_at > $3 ORDER BY id LIMIT $4`,
  };
}
