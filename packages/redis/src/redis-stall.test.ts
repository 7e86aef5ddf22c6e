// A Redis that stalls (SIGSTOP) longer than the engine waits: the request gets 503, and the acquire
// that was already on the wire, which Redis runs when it resumes, must not leave a key held for a
// whole lease. The test pauses a private redis-server it started itself, never the shared one.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createOncely, type Decision, recordId } from '@oncely/core';
import { Redis } from 'ioredis';
import { redisStore } from './redis-store.ts';
import { startCluster, type TestCluster } from './test-cluster.ts';

const expectKind = (decision: Decision, kind: string, code?: string): void => {
  const got = decision.kind === 'reject' ? `reject ${decision.error.code}` : decision.kind;
  assert.equal(got, code ? `${kind} ${code}` : kind);
};

describe('Redis stalled past the engine’s wait', () => {
  let server: TestCluster | undefined;
  let url: string;
  before(async () => {
    server = await startCluster({ masters: 1, cluster: false });
    url = `redis://127.0.0.1:${server.ports[0]}`;
  });
  after(async () => {
    if (server) process.kill(server.pids[0]!, 'SIGCONT');
    await server?.stop();
  });

  const stall = async (ms: number): Promise<void> => {
    process.kill(server!.pids[0]!, 'SIGSTOP');
    await sleep(ms);
    process.kill(server!.pids[0]!, 'SIGCONT');
  };

  for (const [name, clientOptions] of [
    ['the engine bounds the call (storeTimeoutMs)', {}],
    ['the client times the command out (ioredis commandTimeout)', { commandTimeout: 200 }],
  ] as const) {
    it(`${name}: 503 during the stall, and the retry after it runs at once, not 409 for a lease`, async () => {
      const client = new Redis(url, { maxRetriesPerRequest: 1, ...clientOptions });
      client.on('error', () => {});
      try {
        const prefix = `oncely-stall-${Date.now()}:`;
        const store = redisStore({ client, prefix });
        const oncely = createOncely({ store, leaseMs: 30_000, storeTimeoutMs: 400 });
        const input = { scope: 't', key: `k-${name.length}`, fingerprint: 'fp' };
        await client.ping();
        const stalled = stall(1500);
        await sleep(50);
        const started = Date.now();
        expectKind(await oncely.begin(input), 'reject', 'ERR_ONCELY_STORE_UNAVAILABLE');
        assert.ok(Date.now() - started < 1200, 'answered while Redis was still stopped');
        await stalled;
        // Redis ran the queued acquire on resume; the engine's release with the same token follows
        // it. A retry right behind the resume may still see the orphan for a moment; within a
        // second or two (a client's Retry-After) the key is free, not after the 30 s lease.
        const resumed = Date.now();
        let decision: Decision | undefined;
        while (Date.now() - resumed < 3000) {
          decision = await oncely.begin(input);
          if (decision.kind === 'execute') break;
          await sleep(100);
        }
        assert.ok(decision);
        expectKind(decision, 'execute');
        assert.ok(Date.now() - resumed < 3000, `free ${Date.now() - resumed} ms after the resume`);
        if (decision.kind === 'execute') await decision.abort();
        const left = await store.get({ id: recordId('t', input.key), now: Date.now() });
        assert.equal(left, null, 'no record is left behind');
        await store.close();
      } finally {
        client.disconnect();
      }
    });
  }
});
