import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it, type TestContext } from 'node:test';
import {
  createOncely,
  type IdempotencyRecord,
  type RecordSummary,
  recordId,
  type Store,
  type StoredResponse,
} from '@oncely/core';

/** How the suite gets stores of the implementation under test. */
export interface StoreContractOptions {
  /** Shown in the test names, e.g. `sqlite`. */
  name: string;
  /**
   * A new store on the shared backend (same file, same server) that keeps its records under
   * `namespace`. Two stores with different namespaces must not see each other's records.
   * The suite closes every store it creates.
   */
  create(options: { namespace: string }): Store | Promise<Store>;
  /** Runs once after the suite (drop a temp file, a test database, a cluster). */
  cleanup?: () => void | Promise<void>;
  /**
   * The store implements the optional `list` and `purgeExpired`, and the suite fails if it does not.
   * Without it their cases still run for a store that has them, and are skipped for one that has not.
   * @default false
   */
  inspectable?: boolean;
}

/** A store with the optional listing methods. */
type Inspectable = Store & Required<Pick<Store, 'list' | 'purgeExpired'>>;

const LEASE = 30_000;
const TTL = 86_400_000;

/**
 * The store contract: every Oncely store must pass it against its real backend.
 * @example
 * describeStoreContract({ name: 'sqlite', create: ({ namespace }) => sqliteStore({ database: file, namespace }) });
 */
export function describeStoreContract(options: StoreContractOptions): void {
  describe(`store contract: ${options.name}`, () => {
    const opened: Store[] = [];
    const open = async (namespace = `contract-${randomBytes(6).toString('hex')}`): Promise<Store> => {
      const store = await options.create({ namespace });
      opened.push(store);
      return store;
    };
    after(async () => {
      for (const store of opened) await store.close();
      await options.cleanup?.();
    });

    const newId = (): string => recordId('contract', randomBytes(12).toString('hex'));
    const newToken = (): string => randomBytes(16).toString('hex');
    const acquireAt = (
      store: Store,
      id: string,
      now: number,
      extra: { token?: string; fingerprint?: string } = {},
    ) =>
      store.acquire({
        id,
        fingerprint: extra.fingerprint ?? 'fp-1',
        token: extra.token ?? newToken(),
        now,
        leaseUntil: now + LEASE,
        expiresAt: now + TTL,
      });
    const owned = async (store: Store, id: string, now: number): Promise<IdempotencyRecord> => {
      const result = await acquireAt(store, id, now);
      assert.equal(result.acquired, true, 'a fresh id must be acquired');
      return result.record;
    };
    const response = (body: Uint8Array, headers: Array<[string, string]> = []): StoredResponse => ({
      status: 201,
      headers,
      body,
    });

    it('creates an in_progress record owned by the caller', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const token = newToken();
      const result = await acquireAt(store, id, now, { token, fingerprint: 'fp-a' });
      assert.equal(result.acquired, true);
      assert.equal(result.acquired && result.takeover, false);
      assert.deepEqual(result.record, {
        id,
        state: 'in_progress',
        fingerprint: 'fp-a',
        token,
        leaseUntil: now + LEASE,
        expiresAt: now + TTL,
        response: null,
      });
      assert.deepEqual(await store.get({ id, now }), result.record);
      assert.equal(await store.get({ id: newId(), now }), null, 'an unknown id has no record');
    });

    it('returns the existing record, with its fingerprint, to a second caller', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const first = await owned(store, id, now);
      for (const fingerprint of ['fp-1', 'fp-other']) {
        const second = await acquireAt(store, id, now + 1, { fingerprint });
        assert.equal(second.acquired, false);
        assert.equal(second.record.token, first.token);
        assert.equal(
          second.record.fingerprint,
          'fp-1',
          'the stored fingerprint is what mismatch detection needs',
        );
        assert.equal(second.record.state, 'in_progress');
      }
    });

    it('lets exactly one of 50 concurrent acquires win', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const tokens = Array.from({ length: 50 }, newToken);
      const results = await Promise.all(tokens.map((token) => acquireAt(store, id, now, { token })));
      const winners = results.filter((r) => r.acquired);
      assert.equal(winners.length, 1, `expected one winner, got ${winners.length}`);
      const winner = winners[0]!.record.token;
      assert.ok(tokens.includes(winner));
      for (const r of results) assert.equal(r.record.token, winner, 'every loser sees the winner');
    });

    it('completes for the owner and then returns the stored response', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const record = await owned(store, id, now);
      const stored: StoredResponse = {
        status: 201,
        headers: [
          ['content-type', 'application/json'],
          ['location', '/payments/1'],
        ],
        body: new TextEncoder().encode('{"id":1}'),
      };
      assert.equal(
        await store.complete({
          id,
          token: record.token,
          response: stored,
          now: now + 5,
          expiresAt: now + TTL + 5,
        }),
        true,
      );
      const seen = await acquireAt(store, id, now + 10);
      assert.equal(seen.acquired, false);
      assert.equal(seen.record.state, 'completed');
      assert.equal(seen.record.expiresAt, now + TTL + 5, 'retention counts from completion');
      assert.deepEqual(seen.record.response, stored);
      assert.deepEqual((await store.get({ id, now: now + 10 }))?.response, stored);
    });

    it('fences out a stale token: complete, extend and release do nothing', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const record = await owned(store, id, now);
      const stale = newToken();
      assert.equal(
        await store.complete({
          id,
          token: stale,
          response: response(new Uint8Array([1])),
          now,
          expiresAt: now + TTL,
        }),
        false,
      );
      assert.equal(await store.extend({ id, token: stale, now, leaseUntil: now + 10 * LEASE }), false);
      assert.equal(await store.release({ id, token: stale }), false);
      assert.deepEqual(await store.get({ id, now }), record, 'the record is untouched');
    });

    it('fences out the owner once the record is completed', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const { token } = await owned(store, id, now);
      const first = response(new TextEncoder().encode('first'));
      assert.equal(await store.complete({ id, token, response: first, now, expiresAt: now + TTL }), true);
      assert.equal(
        await store.complete({
          id,
          token,
          response: response(new Uint8Array([9])),
          now,
          expiresAt: now + TTL,
        }),
        false,
      );
      assert.equal(await store.extend({ id, token, now, leaseUntil: now + LEASE }), false);
      assert.equal(await store.release({ id, token }), false, 'a completed record is never released');
      assert.deepEqual((await store.get({ id, now }))?.response, first);
    });

    it('extends the lease of the owner, which keeps the key from being taken over', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const { token } = await owned(store, id, now);
      assert.equal(await store.extend({ id, token, now: now + 1000, leaseUntil: now + 1000 + LEASE }), true);
      assert.equal((await store.get({ id, now }))?.leaseUntil, now + 1000 + LEASE);
      const during = await acquireAt(store, id, now + LEASE + 1);
      assert.equal(during.acquired, false, 'the renewed lease has not ended');
    });

    it('lets a caller take over once the lease ended, and fences out the old owner', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const old = await owned(store, id, now);
      const before = await acquireAt(store, id, now + LEASE - 1);
      assert.equal(before.acquired, false, 'not before the lease ends');
      const later = now + LEASE;
      const takeover = await acquireAt(store, id, later);
      assert.equal(takeover.acquired, true);
      assert.equal(takeover.acquired && takeover.takeover, true);
      assert.notEqual(takeover.record.token, old.token);
      assert.equal(takeover.record.leaseUntil, later + LEASE);
      assert.equal(takeover.record.state, 'in_progress');
      const zombie = old.token;
      assert.equal(await store.extend({ id, token: zombie, now: later, leaseUntil: later + LEASE }), false);
      assert.equal(
        await store.complete({
          id,
          token: zombie,
          response: response(new Uint8Array([0])),
          now: later,
          expiresAt: later + TTL,
        }),
        false,
      );
      assert.equal(await store.release({ id, token: zombie }), false);
      const fresh = response(new TextEncoder().encode('new owner'));
      assert.equal(
        await store.complete({
          id,
          token: takeover.record.token,
          response: fresh,
          now: later,
          expiresAt: later + TTL,
        }),
        true,
      );
      assert.deepEqual((await store.get({ id, now: later }))?.response, fresh);
    });

    it('never lets a request with another fingerprint take over', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const old = await owned(store, id, now);
      const other = await acquireAt(store, id, now + 2 * LEASE, { fingerprint: 'fp-other' });
      assert.equal(other.acquired, false);
      assert.equal(other.record.token, old.token);
    });

    it('lets the owner complete after its lease lapsed while nobody took over', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const { token } = await owned(store, id, now);
      const late = now + 2 * LEASE;
      assert.equal(
        await store.complete({
          id,
          token,
          response: response(new Uint8Array()),
          now: late,
          expiresAt: late + TTL,
        }),
        true,
      );
    });

    it('frees the key on release', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const { token } = await owned(store, id, now);
      assert.equal(await store.release({ id, token }), true);
      assert.equal(await store.get({ id, now }), null);
      const again = await acquireAt(store, id, now + 1, { fingerprint: 'fp-2' });
      assert.equal(again.acquired, true);
      assert.equal(again.acquired && again.takeover, false);
      assert.equal(again.record.fingerprint, 'fp-2');
    });

    it('forgets a record when its retention ends', async () => {
      const store = await open();
      const id = newId();
      // Engine time decides; a minute keeps a backend's own TTL (Redis PEXPIRE) from firing mid-test.
      const RETAIN = 60_000;
      const now = Date.now();
      const { token } = await owned(store, id, now);
      const done = response(new TextEncoder().encode('kept'));
      assert.equal(await store.complete({ id, token, response: done, now, expiresAt: now + RETAIN }), true);
      assert.notEqual(await store.get({ id, now: now + RETAIN - 1 }), null);
      assert.equal(await store.get({ id, now: now + RETAIN }), null, 'gone at expiresAt');
      const fresh = await acquireAt(store, id, now + RETAIN, { fingerprint: 'fp-new' });
      assert.equal(fresh.acquired, true, 'an expired record is replaced, whatever its fingerprint');
      assert.equal(fresh.acquired && fresh.takeover, false);
      assert.equal(fresh.record.fingerprint, 'fp-new');
      assert.equal(fresh.record.response, null);
    });

    it('forgets an in_progress record when its retention ends', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const result = await store.acquire({
        id,
        fingerprint: 'a',
        token: newToken(),
        now,
        leaseUntil: now + 100,
        expiresAt: now + 200,
      });
      assert.equal(result.acquired, true);
      assert.equal(await store.get({ id, now: now + 200 }), null);
      const next = await acquireAt(store, id, now + 200, { fingerprint: 'b' });
      assert.equal(next.acquired, true);
    });

    it('keeps bodies byte-exact: all 256 byte values, empty, and large', async () => {
      const store = await open();
      const now = Date.now();
      const bodies = [
        Uint8Array.from({ length: 256 }, (_, i) => i),
        Uint8Array.from({ length: 512 }, (_, i) => 255 - (i % 256)),
        new Uint8Array(0),
        new Uint8Array(randomBytes(256 * 1024)),
      ];
      for (const body of bodies) {
        const id = newId();
        const { token } = await owned(store, id, now);
        assert.equal(
          await store.complete({ id, token, response: response(body), now, expiresAt: now + TTL }),
          true,
        );
        const got = (await store.get({ id, now }))?.response;
        assert.ok(got, 'a stored response');
        assert.ok(got.body instanceof Uint8Array, 'body is a Uint8Array');
        assert.equal(got.body.byteLength, body.byteLength);
        assert.deepEqual(Buffer.from(got.body), Buffer.from(body));
      }
    });

    it('keeps header pairs in order, repeated names included', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const { token } = await owned(store, id, now);
      const headers: Array<[string, string]> = [
        ['x-b', '2'],
        ['link', '</a>; rel="next"'],
        ['x-a', 'one'],
        ['link', '</b>; rel="prev"'],
        ['x-unicode', 'caf\u00e9 \u2603'],
        ['x-empty', ''],
      ];
      assert.equal(
        await store.complete({
          id,
          token,
          response: { status: 299, headers, body: new Uint8Array() },
          now,
          expiresAt: now + TTL,
        }),
        true,
      );
      const got = (await store.get({ id, now }))?.response;
      assert.equal(got?.status, 299);
      assert.deepEqual(got?.headers, headers);
    });

    it('keeps a completion without a response as completed with response null', async () => {
      const store = await open();
      const id = newId();
      const now = Date.now();
      const { token } = await owned(store, id, now);
      assert.equal(await store.complete({ id, token, response: null, now, expiresAt: now + TTL }), true);
      const got = await store.get({ id, now });
      assert.equal(got?.state, 'completed');
      assert.equal(got?.response, null);
    });

    it('isolates namespaces on one backend', async () => {
      const a = await open();
      const b = await open();
      const id = newId();
      const now = Date.now();
      const inA = await owned(a, id, now);
      const inB = await acquireAt(b, id, now);
      assert.equal(inB.acquired, true, 'namespace b does not see namespace a');
      assert.equal(
        await b.complete({ id, token: inA.token, response: null, now, expiresAt: now + TTL }),
        false,
      );
      assert.equal(
        await a.complete({
          id,
          token: inA.token,
          response: response(new Uint8Array([1])),
          now,
          expiresAt: now + TTL,
        }),
        true,
      );
      assert.equal((await b.get({ id, now }))?.state, 'in_progress');
      assert.equal(await b.release({ id, token: inB.record.token }), true);
      assert.equal((await a.get({ id, now }))?.state, 'completed');
    });

    it('serves the engine end to end with a 255-character key', async () => {
      const store = await open();
      const oncely = createOncely({ store });
      const key = `k${'x~ !'.repeat(63)}yz`.slice(0, 255);
      assert.equal(key.length, 255);
      let runs = 0;
      const first = await oncely.run({ scope: 'tenant', key, fingerprint: 'f' }, () => ({ n: ++runs }));
      const again = await oncely.run({ scope: 'tenant', key, fingerprint: 'f' }, () => ({ n: ++runs }));
      assert.deepEqual(first, { n: 1 });
      assert.deepEqual(again, { n: 1 });
      assert.equal(runs, 1);
      const other = await oncely.run({ scope: 'other-tenant', key, fingerprint: 'f' }, () => ({ n: ++runs }));
      assert.deepEqual(other, { n: 2 }, 'another scope is another key');
    });

    describe('list and purgeExpired', () => {
      /** The store, or undefined (the case skipped) when it has no listing and need not have one. */
      const inspectable = async (t: TestContext, namespace?: string): Promise<Inspectable | undefined> => {
        const store = await open(namespace);
        if (options.inspectable) {
          assert.equal(typeof store.list, 'function', 'an inspectable store has list()');
          assert.equal(typeof store.purgeExpired, 'function', 'an inspectable store has purgeExpired()');
        } else if (typeof store.list !== 'function' || typeof store.purgeExpired !== 'function') {
          t.skip(`${store.name} has no list() and purgeExpired()`);
          return undefined;
        }
        return store as Inspectable;
      };
      /** The ids of every page from `cursor` on (the first page without one) to the last. */
      const walk = async (store: Inspectable, now: number, limit: number, cursor?: string) => {
        const pages: string[][] = [];
        do {
          const page = await store.list({ now, limit, ...(cursor === undefined ? {} : { cursor }) });
          assert.ok(page.records.length <= limit, `a page of ${page.records.length}, over limit ${limit}`);
          pages.push(page.records.map((r) => r.id));
          cursor = page.cursor;
          assert.ok(pages.length <= 1000, 'the walk ends');
        } while (cursor !== undefined);
        return pages;
      };
      const ids = async (store: Inspectable, now: number): Promise<string[]> =>
        (await walk(store, now, 100)).flat().sort();
      // In the past for the engine at `now + RETAIN`, while Redis' own TTL still keeps the keys.
      const RETAIN = 60_000;
      const expiring = async (store: Store, now: number, stored: StoredResponse | null | 'running') => {
        const id = newId();
        const token = newToken();
        const expiresAt = now + RETAIN;
        const result = await store.acquire({
          id,
          fingerprint: 'f',
          token,
          now,
          leaseUntil: now + 1,
          expiresAt,
        });
        assert.equal(result.acquired, true);
        if (stored !== 'running') {
          assert.equal(await store.complete({ id, token, response: stored, now, expiresAt }), true);
        }
        return id;
      };

      it('lists in-progress and completed records with their summaries, never expired ones', async (t) => {
        const store = await inspectable(t);
        if (!store) return;
        const now = Date.now();
        const base = { leaseUntil: now + LEASE, expiresAt: now + TTL };
        const completed = async (
          stored: StoredResponse | null,
          status: number | null,
          bodyBytes: number | null,
        ): Promise<RecordSummary> => {
          const { id, token } = await owned(store, newId(), now);
          assert.equal(
            await store.complete({ id, token, response: stored, now, expiresAt: now + TTL }),
            true,
          );
          return { id, state: 'completed', ...base, status, bodyBytes };
        };
        const running = (await owned(store, newId(), now)).id;
        const expected: RecordSummary[] = [
          { id: running, state: 'in_progress', ...base, status: null, bodyBytes: null },
          await completed(response(new TextEncoder().encode('{"id":1}')), 201, 8),
          await completed({ status: 204, headers: [['x-a', '1']], body: new Uint8Array() }, 204, 0),
          await completed(null, null, null),
        ];
        const soon = [
          await expiring(store, now, 'running'),
          await expiring(store, now, response(new Uint8Array(3))),
        ];
        const listed = async (at: number): Promise<RecordSummary[]> => {
          const page = await store.list({ now: at, limit: 100 });
          assert.equal(page.cursor, undefined, 'everything fits in one page: no cursor');
          return [...page.records].sort((a, b) => (a.id < b.id ? -1 : 1));
        };
        const before = await listed(now + RETAIN - 1);
        assert.deepEqual(
          before.map((r) => r.id),
          [...expected.map((r) => r.id), ...soon].sort(),
          'a record is listed until its retention ends',
        );
        // The summaries themselves; a completed record's leaseUntil is not part of the contract.
        const later = (await listed(now + RETAIN)).map((r) =>
          r.state === 'completed' ? { ...r, leaseUntil: now + LEASE } : r,
        );
        assert.deepEqual(
          later,
          [...expected].sort((a, b) => (a.id < b.id ? -1 : 1)),
          'never an expired record',
        );
      });

      it('respects limit, and pages through 25 records with the cursor: each once, none missed', async (t) => {
        const store = await inspectable(t);
        if (!store) return;
        const now = Date.now();
        const created: string[] = [];
        for (let i = 0; i < 25; i++) {
          const { id, token } = await owned(store, newId(), now);
          if (i % 2 === 0) {
            const stored = response(new Uint8Array(i));
            assert.equal(
              await store.complete({ id, token, response: stored, now, expiresAt: now + TTL }),
              true,
            );
          }
          created.push(id);
        }
        created.sort();
        const first = await store.list({ now, limit: 7 });
        assert.equal(first.records.length, 7, 'a full page while there are more');
        assert.equal(typeof first.cursor, 'string', 'and a cursor to go on');
        for (const limit of [1, 7, 25, 100]) {
          const pages = await walk(store, now, limit);
          const listed = pages.flat();
          assert.equal(new Set(listed).size, listed.length, `limit ${limit}: no record twice`);
          assert.deepEqual([...listed].sort(), created, `limit ${limit}: every record`);
          assert.ok(pages.length >= Math.ceil(25 / limit), `limit ${limit}: ${pages.length} pages`);
        }
        // Records written while paging may be listed or not; the ones that were there all are.
        const page = await store.list({ now, limit: 10 });
        for (let i = 0; i < 3; i++) await owned(store, newId(), now);
        const rest = page.cursor === undefined ? [] : (await walk(store, now, 10, page.cursor)).flat();
        const seen = new Set([...page.records.map((r) => r.id), ...rest]);
        for (const id of created) assert.ok(seen.has(id), `${id} is listed by a walk with writes in it`);
      });

      it('lists and purges its own namespace only', async (t) => {
        const name = `contract-${randomBytes(6).toString('hex')}`;
        const a = await inspectable(t, name);
        if (!a) return;
        // A namespace whose name starts with the other's: matching by prefix would mix them.
        const b = (await inspectable(t, `${name}-more`)) as Inspectable;
        const now = Date.now();
        const live = (await owned(a, newId(), now)).id;
        const old = await expiring(a, now, null);
        const inB = (await owned(b, newId(), now)).id;
        assert.deepEqual(await ids(a, now), [live, old].sort());
        assert.deepEqual(await ids(b, now), [inB]);
        assert.equal(
          await b.purgeExpired({ now: now + RETAIN }),
          0,
          "another namespace's expired record stays",
        );
        assert.notEqual(await a.get({ id: old, now }), null);
        assert.equal(await a.purgeExpired({ now: now + RETAIN }), 1);
        assert.deepEqual(await ids(b, now), [inB]);
      });

      it('purges expired records only, at most limit, and says how many', async (t) => {
        const store = await inspectable(t);
        if (!store) return;
        const now = Date.now();
        const keep: string[] = [];
        for (let i = 0; i < 3; i++) keep.push((await owned(store, newId(), now)).id);
        const gone = [
          await expiring(store, now, 'running'),
          await expiring(store, now, null),
          await expiring(store, now, response(new Uint8Array([1, 2]))),
          await expiring(store, now, response(new Uint8Array())),
          await expiring(store, now, 'running'),
        ];
        assert.deepEqual(await ids(store, now), [...keep, ...gone].sort());
        const later = now + RETAIN;
        assert.equal(await store.purgeExpired({ now: later - 1 }), 0, 'nothing has expired yet');
        assert.equal(await store.purgeExpired({ now: later, limit: 2 }), 2, 'at most limit');
        assert.equal(await store.purgeExpired({ now: later }), 3, 'the rest');
        assert.equal(await store.purgeExpired({ now: later }), 0, 'nothing left');
        for (const id of keep)
          assert.notEqual(await store.get({ id, now: later }), null, 'a live record stays');
        // Deleted for real: listed at the earlier time, they would still be live. (Not `get`: a
        // tiered store's cache may keep its copy, which expires at the same instant anyway.)
        assert.deepEqual(await ids(store, now), keep.sort());
      });
    });

    it('closes twice without error', async () => {
      const store = await options.create({ namespace: `contract-${randomBytes(6).toString('hex')}` });
      await store.close();
      await store.close();
    });
  });
}
