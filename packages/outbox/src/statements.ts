/**
 * Every SQL statement of the outbox and the relay, built once per table. Each is a single statement,
 * hence a transaction of its own (or a part of the caller's, for `add`): no relay ever holds a
 * transaction open while it talks to a broker.
 */
import { createHash } from 'node:crypto';
import type { TableName } from './table-name.ts';

export interface Statements {
  /** $1 id, $2 topic, $3 key, $4 type, $5 payload (JSON text), $6 headers (JSON text) → `seq` or no row. */
  add: string;
  /** $1 limit, $2 claim token, $3 lease ms, $4 lapse error, $5 max failures, $6 start after key ('' from the first) → the claimed rows, and `last_key`. */
  claim: string;
  /** $1 seqs, $2 token, $3 max failures, $4 ok flags, $5 counted flags, $6 errors, $7 delays ms. */
  settle: string;
  /** $1 retention ms, $2 batch size → deleted rows. */
  cleanup: string;
  /** → pending, dead, lag_ms. */
  stats: string;
  /** $1 after seq, $2 limit → dead rows. */
  listDead: string;
  /** $1 ids (or null for all) → requeued rows. */
  requeueDead: string;
  /** $1 ids → deleted rows. */
  discardDead: string;
}

/** The columns a relay needs to publish a message (and the seq it is settled by). */
const CLAIMED =
  'o.seq, o.id, o.topic, o.key, o.type, o.payload, o.headers, o.attempts, o.state, o.created_at';

export function statements(table: TableName): Statements {
  const t = table.sql;
  // The first half of a two-int advisory lock key, per table: producers of different outbox tables
  // never wait for each other, and the two-int key space is apart from pg_advisory_lock(bigint).
  const lockClass = createHash('sha256').update(`oncely.outbox:${table.display}`).digest().readInt32BE(0);
  return {
    // The advisory lock makes producers of one key take turns, held to the end of the caller's
    // transaction: a second transaction adding to the same key waits for the first to commit or roll
    // back before its row gets a `seq`. So per key `seq` order is commit order, and a relay that sees
    // a key's message can trust that every older message of that key is already visible to it: the
    // claim's "oldest unpublished of its key" test is then sound under concurrent relays. Without
    // it, a slow transaction could commit seq 10 after seq 11 was claimed, and both would be in
    // flight at once. The lock is taken in the statement's CTE, before the row is formed (the
    // identity default is evaluated in the projection over it), so one round trip does both.
    // hashtext() collisions only make two keys take turns; they never break ordering.
    add: `WITH key_lock AS (SELECT pg_advisory_xact_lock(${lockClass}, hashtext($3::text)))
INSERT INTO ${t} (id, topic, key, type, payload, headers)
SELECT $1::uuid, $2::text, $3::text, $4::text, $5::jsonb, $6::jsonb FROM key_lock
ON CONFLICT (id) DO NOTHING
RETURNING seq`,

    // Claim a batch: the head (oldest unpublished message) of each key, when it is pending, due and
    // not leased by another relay; a dead head holds its key back.
    // - The heads are found by a skip scan over the key index: one index probe per key, from the key
    //   after $6 (a rotating start, so that under a backlog every key gets its turn), lazily: the walk
    //   stops as soon as $1 heads are claimed. The cost is one probe per key walked, never one per
    //   pending row: a key with a backlog of a million messages costs the same as a key with one.
    //   Keys are compared in the "C" collation (bytes), the index's order, whatever the database's.
    // - SKIP LOCKED lets relays claim side by side without waiting on each other's candidates.
    // - If another relay claimed a head and committed after this statement's snapshot, the row is
    //   re-checked on its new version once locked (READ COMMITTED), and its live lease excludes it.
    // - A key's next message becomes its head only once the previous one is published: at most one
    //   message per key is ever in flight, across all relays, and per key they reach the broker in
    //   order (each only after the broker confirmed the one before). This needs every older message
    //   of a key to be visible whenever a newer one is, which add()'s per-key lock provides.
    // - A row whose previous claim lapsed (its token is still set: the relay died or stalled holding
    //   it) counts one failure; past the limit it goes dead here instead of being published again,
    //   so a message that kills every relay that touches it cannot loop forever.
    // - last_key: where the next claim of this relay starts its walk.
    claim: `WITH RECURSIVE heads (key, seq) AS (
  (SELECT key, seq FROM ${t}
   WHERE state <> 'published' AND key COLLATE "C" > $6::text COLLATE "C"
   ORDER BY key COLLATE "C", seq LIMIT 1)
  UNION ALL
  SELECT n.key, n.seq FROM heads h CROSS JOIN LATERAL (
    SELECT key, seq FROM ${t}
    WHERE state <> 'published' AND key COLLATE "C" > h.key COLLATE "C"
    ORDER BY key COLLATE "C", seq LIMIT 1
  ) n
),
candidates AS (
  SELECT o.seq FROM heads h JOIN ${t} o ON o.seq = h.seq
  WHERE o.state = 'pending'
    AND o.next_attempt_at <= now()
    AND (o.claimed_until IS NULL OR o.claimed_until <= now())
  LIMIT $1
  FOR UPDATE OF o SKIP LOCKED
),
claimed AS (
  UPDATE ${t} o SET
    attempts = o.attempts + 1,
    failures = o.failures + CASE WHEN o.claim_token IS NULL THEN 0 ELSE 1 END,
    last_error = CASE WHEN o.claim_token IS NULL THEN o.last_error ELSE $4::text END,
    state = CASE WHEN o.claim_token IS NOT NULL AND o.failures + 1 >= $5::int THEN 'dead' ELSE 'pending' END,
    claim_token = CASE WHEN o.claim_token IS NOT NULL AND o.failures + 1 >= $5::int THEN NULL ELSE $2::uuid END,
    claimed_until = CASE WHEN o.claim_token IS NOT NULL AND o.failures + 1 >= $5::int THEN NULL
                         ELSE now() + $3::float8 * interval '1 millisecond' END
  FROM candidates c
  WHERE o.seq = c.seq
  RETURNING ${CLAIMED}
)
SELECT o.*, max(o.key COLLATE "C") OVER () AS last_key FROM claimed o`,

    // Settle a batch in one statement, fenced by the claim token: a relay whose lease lapsed and was
    // taken over writes nothing. Confirmed → published. Refused by the broker (counted) → retried
    // after the delay, or dead at the limit. Transient (broker unreachable, timeout) → retried after
    // the delay without counting: an outage is not the message's fault.
    settle: `UPDATE ${t} o SET
  state = CASE WHEN r.ok THEN 'published'
               WHEN r.counted AND o.failures + 1 >= $3::int THEN 'dead'
               ELSE 'pending' END,
  published_at = CASE WHEN r.ok THEN now() END,
  failures = o.failures + CASE WHEN NOT r.ok AND r.counted THEN 1 ELSE 0 END,
  last_error = CASE WHEN r.ok THEN o.last_error ELSE r.error END,
  next_attempt_at = CASE WHEN r.ok THEN o.next_attempt_at
                         ELSE now() + r.delay_ms * interval '1 millisecond' END,
  claim_token = NULL,
  claimed_until = NULL
FROM unnest($1::bigint[], $4::boolean[], $5::boolean[], $6::text[], $7::float8[])
  AS r(seq, ok, counted, error, delay_ms)
WHERE o.seq = r.seq AND o.claim_token = $2::uuid
RETURNING o.seq, o.state`,

    // Published rows past the retention, oldest first, in batches; SKIP LOCKED so relays cleaning
    // at the same time split the work instead of waiting on each other.
    cleanup: `DELETE FROM ${t} WHERE seq IN (
  SELECT seq FROM ${t}
  WHERE state = 'published' AND published_at < now() - $1::float8 * interval '1 millisecond'
  ORDER BY published_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)`,

    stats: `SELECT
  count(*) FILTER (WHERE state = 'pending') AS pending,
  count(*) FILTER (WHERE state = 'dead') AS dead,
  extract(epoch FROM now() - min(created_at) FILTER (WHERE state = 'pending')) * 1000 AS lag_ms
FROM ${t} WHERE state <> 'published'`,

    listDead: `SELECT seq, id, topic, key, type, payload, headers, attempts, failures, last_error, created_at
FROM ${t} WHERE state = 'dead' AND seq > $1::bigint ORDER BY seq LIMIT $2`,

    requeueDead: `UPDATE ${t} SET state = 'pending', failures = 0, next_attempt_at = now(),
  claim_token = NULL, claimed_until = NULL
WHERE state = 'dead' AND ($1::uuid[] IS NULL OR id = ANY($1::uuid[]))`,

    discardDead: `DELETE FROM ${t} WHERE state = 'dead' AND id = ANY($1::uuid[])`,
  };
}
