// Two gateway processes on one Redis and on one PostgreSQL store: a key runs once across both, and
// `oncely keys` reads what they wrote. Needs REDIS_URL and DATABASE_URL (defaults: local servers).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { recordId } from '@oncely/core';
import {
  connectPostgres,
  connectRedis,
  DATABASE_URL,
  deleteRedisKeys,
  REDIS_URL,
  unique,
} from '@oncely/test-stores';
import { newKey, post, type RawReply } from './test-client.ts';
import { type GatewayProcess, runCli, startGatewayProcess } from './test-gateway.ts';
import { startTestUpstream, type TestUpstream } from './test-upstream.ts';

// Fail loudly, before any process starts, when a server is missing.
const redis = await connectRedis();
const pool = await connectPostgres();
const redisPrefix = `oncely_gateway_shared_${unique()}:`;
const table = `oncely_gateway_shared_${unique()}`;

const processes: GatewayProcess[] = [];
const upstreams: TestUpstream[] = [];
after(async () => {
  for (const p of processes) await p.stop('SIGKILL');
  for (const u of upstreams) await u.close();
  await deleteRedisKeys(redis, redisPrefix);
  redis.disconnect();
  await pool.query(`DROP TABLE IF EXISTS "${table}"`);
  await pool.end();
});

const withParam = (url: string, name: string, value: string): string => {
  const parsed = new URL(url);
  parsed.searchParams.set(name, value);
  return parsed.href;
};

const stores: Array<[string, string]> = [
  ['redis', withParam(REDIS_URL, 'prefix', redisPrefix)],
  ['postgres', withParam(DATABASE_URL, 'table', table)],
];

for (const [name, store] of stores) {
  describe(`two gateways on one ${name} store`, () => {
    it('run 50 concurrent duplicates, split across both, exactly once', { timeout: 60_000 }, async () => {
      const upstream = await startTestUpstream();
      upstreams.push(upstream);
      const args = ['proxy', '--port', '0', '--upstream', upstream.url, '--store', store];
      const [a, b] = await Promise.all([startGatewayProcess(args), startGatewayProcess(args)]);
      processes.push(a!, b!);
      const key = newKey();
      const replies: RawReply[] = await Promise.all(
        Array.from({ length: 50 }, (_, i) => post(i % 2 === 0 ? a!.url : b!.url, '/slow?ms=500', key)),
      );
      assert.equal(upstream.app.count('slow'), 1, 'one upstream execution');
      const statuses = replies.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, ...Array(49).fill(409)], `statuses: ${statuses.join(',')}`);
      for (const reply of replies.filter((r) => r.status === 409)) {
        assert.equal(reply.json().code, 'ERR_ONCELY_IN_PROGRESS');
      }
      const winner = replies.find((r) => r.status === 201)!;
      // Both gateways replay it now.
      for (const url of [a!.url, b!.url]) {
        const replay = await post(url, '/slow?ms=500', key);
        assert.equal(replay.header('idempotent-replayed'), 'true');
        assert.deepEqual(replay.json(), winner.json());
      }
      assert.equal(upstream.app.count('slow'), 1);

      // `oncely keys` reads the same store.
      const list = await runCli(['keys', 'list', '--store', store]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, new RegExp(`^${recordId('', key)}\\s+completed\\s+201\\s`, 'm'));
      const shown = await runCli(['keys', 'show', key, '--store', store]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal((JSON.parse(shown.stdout) as { state: string }).state, 'completed');
      const purged = await runCli(['keys', 'purge', '--expired', '--store', store]);
      assert.equal(purged.code, 0, purged.stderr);
      assert.match(purged.stdout, /^deleted \d+ expired records?\n$/);

      assert.equal(await a!.stop(), 0);
      assert.equal(await b!.stop(), 0);
    });
  });
}
