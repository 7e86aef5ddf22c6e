/**
 * The store on a real Redis Cluster: three masters started by this test, the contract with ioredis
 * `Cluster` and node-redis `createCluster`, records spread over every node, NOSCRIPT on a node that
 * never saw the scripts, and the HTTP behaviour suite through the Hono adapter.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { describeHttpBehaviour, describeStoreContract } from '@oncely/conformance';
import { recordId } from '@oncely/core';
import { Cluster } from 'ioredis';
import { createCluster } from 'redis';
// The Hono adapter's suite routes (a test file of that package, not part of its published API).
import { startHonoTestServer } from '../../hono/src/test-app.ts';
import { fromIoredis, fromNodeRedis, type RedisClient, type RedisCommands, redisStore } from './index.ts';
import { startCluster, type TestCluster } from './test-cluster.ts';
import { counting } from './test-redis.ts';

let cluster: TestCluster | undefined;
before(
  async () => {
    cluster = await startCluster({ masters: 3, timeoutMs: 30_000 });
  },
  { timeout: 40_000 },
);
after(async () => {
  await cluster?.stop();
});

const started = (): TestCluster => {
  if (!cluster) throw new Error('the test cluster did not start: see the failure of the before hook');
  return cluster;
};

interface Connection {
  client: RedisClient;
  commands: RedisCommands;
  close(): Promise<void>;
}

async function ioredisCluster(): Promise<Connection> {
  const client = new Cluster(
    started().ports.map((port) => ({ host: '127.0.0.1', port })),
    { lazyConnect: true, clusterRetryStrategy: () => null },
  );
  client.on('error', () => {});
  await client.connect();
  return { client, commands: fromIoredis(client), close: async () => client.disconnect() };
}

async function nodeRedisCluster(): Promise<Connection> {
  const client = createCluster({
    rootNodes: started().ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })),
    defaults: { socket: { connectTimeout: 3000, reconnectStrategy: false } },
  });
  client.on('error', () => {});
  await client.connect();
  return { client, commands: fromNodeRedis(client), close: () => client.close() };
}

for (const [name, connect] of [
  ['ioredis Cluster', ioredisCluster],
  ['node-redis createCluster', nodeRedisCluster],
] as const) {
  describe(`redis cluster (${name})`, { timeout: 60_000 }, () => {
    let connection: Connection | undefined;
    before(async () => {
      connection = await connect();
    });
    const connected = (): Connection => {
      if (!connection)
        throw new Error('not connected to the test cluster: see the failure of the before hook');
      return connection;
    };

    it('falls back to EVAL on nodes that never saw the scripts, then uses EVALSHA', async () => {
      for (const port of started().ports) await started().cli(port, 'SCRIPT', 'FLUSH');
      const wire = counting(connected().commands);
      const store = redisStore({ client: wire, prefix: `cluster-${randomBytes(4).toString('hex')}:` });
      const now = Date.now();
      const input = { fingerprint: 'f', now, leaseUntil: now + 1000, expiresAt: now + 60_000 };
      const id = recordId('cluster', randomBytes(8).toString('hex'));
      assert.equal((await store.acquire({ ...input, id, token: 'a' })).acquired, true);
      assert.deepEqual(wire.sent, ['EVALSHA', 'EVAL']);
      wire.sent.length = 0;
      assert.equal((await store.acquire({ ...input, id, token: 'b' })).acquired, false);
      assert.deepEqual(wire.sent, ['EVALSHA']);
      assert.equal(await store.release({ id, token: 'a' }), true);
    });

    it('spreads records over every master: the hash tag is the record id, not the prefix', async () => {
      const prefix = `cluster-${randomBytes(4).toString('hex')}:`;
      const store = redisStore({ client: connected().client, prefix });
      const now = Date.now();
      const ids = Array.from({ length: 60 }, (_, i) => recordId('spread', `key-${i}`));
      for (const id of ids) {
        const result = await store.acquire({
          id,
          fingerprint: 'f',
          token: 't',
          now,
          leaseUntil: now + 1000,
          expiresAt: now + 60_000,
        });
        assert.equal(result.acquired, true);
      }
      const perNode: number[] = [];
      for (const port of started().ports) {
        const keys = (await started().cli(port, '--scan', '--pattern', `${prefix}*`))
          .split('\n')
          .filter(Boolean);
        perNode.push(keys.length);
        for (const key of keys.slice(0, 3)) {
          // A key lives in the slot of its hash tag alone: the prefix does not move it.
          const id = key.slice(prefix.length + 1, -1);
          const slot = (await started().cli(port, 'CLUSTER', 'KEYSLOT', key)).trim();
          assert.equal(slot, (await started().cli(port, 'CLUSTER', 'KEYSLOT', `{${id}}`)).trim());
        }
      }
      assert.equal(
        perNode.reduce((a, b) => a + b),
        ids.length,
      );
      assert.ok(
        perNode.every((n) => n > 0),
        `every master holds records: ${perNode.join(', ')}`,
      );
      for (const id of ids) assert.equal(await store.release({ id, token: 't' }), true);
    });

    describeStoreContract({
      name: `redis cluster (${name})`,
      create: ({ namespace }) => redisStore({ client: connected().client, prefix: `${namespace}:` }),
      inspectable: true,
      cleanup: () => connection?.close(),
    });
  });
}

// The HTTP behaviour suite on the cluster, through the Hono adapter: every adapter translates to the
// same core HTTP layer, so what this adds is the store on a cluster under real requests.
let httpConnection: Promise<Connection> | undefined;
let httpStores = 0;
const httpPrefix = `cluster-http-${randomBytes(4).toString('hex')}`;
describeHttpBehaviour({
  name: 'hono + redis cluster',
  store: async () => {
    httpConnection ??= ioredisCluster();
    return redisStore({ client: (await httpConnection).client, prefix: `${httpPrefix}-${++httpStores}:` });
  },
  start: startHonoTestServer,
  cleanup: async () => {
    if (httpConnection) await (await httpConnection).close();
  },
});
