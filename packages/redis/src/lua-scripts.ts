import { createHash } from 'node:crypto';

/**
 * The store's Lua scripts. Each step of the store contract is one script run by EVALSHA: Redis runs a
 * script to the end before any other command, so a step is atomic and costs one round trip.
 *
 * Layout: one hash per record, at `KEYS[1]` (`<prefix>{<id>}`), with the fields
 *
 *   state        'in_progress' | 'completed'
 *   fingerprint  of the request that created the record
 *   token        fencing token of the current owner
 *   leaseUntil   epoch ms (decimal)
 *   expiresAt    epoch ms (decimal)
 *   status       decimal; absent while in progress and when no response is kept
 *   headers      JSON array of [name, value] pairs; present exactly when status is
 *   body         the raw body bytes (never base64, never JSON); present exactly when status is
 *
 * and a Redis TTL (PEXPIRE) of expiresAt - now, so Redis drops a record about when it logically
 * expires. Times come from the engine's clock (ARGV), never from Redis TIME: the scripts compare the
 * engine's `now` with the stored times, exactly as every other store does. A record whose expiresAt
 * has passed is treated as absent even while Redis still holds it (the two clocks may differ a little).
 *
 * Scripts touch `KEYS[1]` only, so they are valid on Redis Cluster. Every check runs before the first
 * write: Redis does not roll a script back when it fails halfway.
 */

/** A script and its SHA1, computed here so EVALSHA needs no SCRIPT LOAD round trip first. */
export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

function script(name: string, source: string): LuaScript {
  return Object.freeze({ name, source, sha: createHash('sha1').update(source).digest('hex') });
}

/** The hash fields in the order `HMGET` reads them and the decoder expects them. */
export const FIELDS = Object.freeze([
  'state',
  'fingerprint',
  'token',
  'leaseUntil',
  'expiresAt',
  'status',
  'headers',
  'body',
] as const);

const HMGET_ALL = `redis.call('HMGET', KEYS[1], ${FIELDS.map((f) => `'${f}'`).join(', ')})`;

/**
 * ARGV: fingerprint, token, now, leaseUntil, expiresAt, ttlMs.
 * Returns 1 (created), 2 (taken over), or the existing record's fields in HMGET order, so a caller
 * that did not acquire learns everything (replay, conflict, mismatch) in the same round trip.
 *
 * The lease timeline of one key, with now on the engine's clock:
 *
 *   acquire ──────── leaseUntil ─────────────────────────────── expiresAt
 *   │ owner runs,     │ lease lapsed: a retry with the same       │ retention over: the record is
 *   │ everybody else  │ fingerprint takes over (new token);       │ gone, whatever its state; any
 *   │ gets the record │ another fingerprint still gets the record │ request creates a fresh one
 *
 * A completed record is never taken over: it is replayed until expiresAt.
 */
export const ACQUIRE = script(
  'acquire',
  `local r = ${HMGET_ALL}
local now = tonumber(ARGV[3])
if r[1] and tonumber(r[5]) > now then
  -- A live record. Its owner's lease lapsed and this is a retry of the same request: take it over.
  if r[1] == 'in_progress' and tonumber(r[4]) <= now and r[2] == ARGV[1] then
    redis.call('HSET', KEYS[1], 'token', ARGV[2], 'leaseUntil', ARGV[4], 'expiresAt', ARGV[5])
    redis.call('PEXPIRE', KEYS[1], ARGV[6])
    return 2
  end
  -- Otherwise the caller gets it whole (absent response fields come back as nil).
  return r
end
-- No record, or its retention ended: a fresh one, with nothing of an old response left over.
if r[1] then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'state', 'in_progress', 'fingerprint', ARGV[1], 'token', ARGV[2],
  'leaseUntil', ARGV[4], 'expiresAt', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1`,
);

// After complete and release: tell waiters in any process, on the store's one channel `<prefix>done`
// (the key name is `<prefix>{<id>}`), that the record changed. Classic pub/sub, so on a cluster the
// message reaches subscribers on every node, and travels the cluster bus to every node whether or
// not anyone subscribed (one small message per completion and node); on a single server, with
// nobody subscribed, it costs next to nothing. It adds no round trip. `pcall`, last: a script's writes are not rolled back by a
// later error, so a user whose ACL does not grant PUBLISH on the channel must not turn a completion
// that landed into a failed one. Without the grant, waiters simply poll.
const NOTIFY = `redis.pcall('PUBLISH', string.match(KEYS[1], '^(.*){') .. 'done', KEYS[1])`;

// Fencing shared by complete, extend and release: only the current owner of an in_progress record.
const OWNER = `local o = redis.call('HMGET', KEYS[1], 'state', 'token')
if o[1] ~= 'in_progress' or o[2] ~= ARGV[1] then return 0 end`;

/**
 * ARGV: token, expiresAt, ttlMs[, status, headers, body]. Returns 1, or 0 when `token` is not the
 * owner's. Retention restarts at completion: the TTL becomes expiresAt - now. Without a response
 * (too large to keep) the response fields are removed, so `status` alone says whether one is kept.
 */
export const COMPLETE = script(
  'complete',
  `${OWNER}
if #ARGV > 3 then
  redis.call('HSET', KEYS[1], 'state', 'completed', 'expiresAt', ARGV[2],
    'status', ARGV[4], 'headers', ARGV[5], 'body', ARGV[6])
else
  redis.call('HSET', KEYS[1], 'state', 'completed', 'expiresAt', ARGV[2])
  redis.call('HDEL', KEYS[1], 'status', 'headers', 'body')
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
${NOTIFY}
return 1`,
);

/** ARGV: token, leaseUntil. Returns 1, or 0 when `token` is not the owner's. */
export const EXTEND = script(
  'extend',
  `${OWNER}
redis.call('HSET', KEYS[1], 'leaseUntil', ARGV[2])
return 1`,
);

/** ARGV: token. Returns 1, or 0 when `token` is not the owner's. */
export const RELEASE = script(
  'release',
  `${OWNER}
redis.call('DEL', KEYS[1])
${NOTIFY}
return 1`,
);

/**
 * ARGV: ttlMs, state, fingerprint, token, leaseUntil, expiresAt[, status, headers, body].
 * Replaces whatever the key held with the given record (the tiered store's cache fill); a ttlMs
 * below 1 means the record has already expired, and only the old copy is deleted.
 */
export const PUT = script(
  'put',
  `redis.call('DEL', KEYS[1])
if tonumber(ARGV[1]) < 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'fingerprint', ARGV[3], 'token', ARGV[4],
  'leaseUntil', ARGV[5], 'expiresAt', ARGV[6])
if #ARGV > 6 then
  redis.call('HSET', KEYS[1], 'status', ARGV[7], 'headers', ARGV[8], 'body', ARGV[9])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`,
);

/**
 * No ARGV. The summary `list` shows: state, leaseUntil, expiresAt, status (nil when no response is
 * kept) and the body's length (HSTRLEN, so the bytes never cross the wire), read in one step so they
 * belong to one version of the record; nil when the key is gone (deleted or expired since SCAN).
 */
export const SUMMARY = script(
  'summary',
  `local r = redis.call('HMGET', KEYS[1], 'state', 'leaseUntil', 'expiresAt', 'status')
if not r[1] then return false end
return {r[1], r[2], r[3], r[4], redis.call('HSTRLEN', KEYS[1], 'body')}`,
);

/**
 * ARGV: now. Deletes the record if its retention ended by the engine's `now`; returns 1, or 0 when
 * it is live or gone. The check runs here, not after SCAN: between the two, a request may have
 * replaced the expired record with a fresh one under the same key, which must stay.
 */
export const PURGE_EXPIRED = script(
  'purge-expired',
  `local e = redis.call('HGET', KEYS[1], 'expiresAt')
if e and tonumber(e) <= tonumber(ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return 0`,
);
