/**
 * A server process of the chaos test in PostgreSQL transactional mode: a Fastify POST /pay whose work
 * inserts a business row `(key, exec, pid)` inside the transaction that also completes the key, as
 * docs/postgres.md shows. No upstream: the row is the side effect, and a kill mid-transaction must
 * roll it back. Each work announces itself on stdout (`work <key> <exec> <time>`, written
 * synchronously so the line survives a kill that follows), which the driver counts as an execution.
 *
 *   node --conditions=oncely:source transactional-server.ts '<TransactionalConfig as JSON>'
 */
import { randomUUID } from 'node:crypto';
import { writeSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createOncely,
  fingerprint,
  isOncelyError,
  OncelyError,
  parseIdempotencyKey,
  problemResponse,
  type StoredResponse,
} from '@oncely/core';
import { postgresStore, transactional } from '@oncely/postgres';
import Fastify, { type FastifyReply } from 'fastify';
import pg from 'pg';
import { now } from './timeline.ts';

export interface TransactionalConfig {
  url: string;
  table: string;
  namespace: string;
  /** The business table: `(key text, exec text, pid integer)`, no unique constraint, so duplicates would show. */
  payments: string;
  leaseMs: number;
  /** The work holds its transaction open for a delay drawn from [min, max] ms after the INSERT. */
  workDelayMs: [number, number];
}

const config = JSON.parse(process.argv[2] ?? '{}') as TransactionalConfig;
const pool = new pg.Pool({ connectionString: config.url, max: 10, connectionTimeoutMillis: 5_000 });
pool.on('error', () => {});
const store = postgresStore({ pool, table: config.table, namespace: config.namespace });
const oncely = createOncely({ store, leaseMs: config.leaseMs });
const tx = transactional({ oncely, store, pool });
const [minDelay, maxDelay] = config.workDelayMs;

const send = (reply: FastifyReply, response: StoredResponse): FastifyReply => {
  for (const [name, value] of response.headers) reply.header(name, value);
  return reply.code(response.status).send(Buffer.from(response.body));
};

const app = Fastify({ forceCloseConnections: true });
app.post('/pay', async (request, reply) => {
  const parsed = parseIdempotencyKey(request.headers['idempotency-key']);
  if (!parsed.ok) return send(reply, problemResponse(new OncelyError('ERR_ONCELY_KEY_INVALID', 'bad key')));
  const { key } = parsed;
  const body = JSON.stringify(request.body);
  try {
    const { response } = await tx.execute(
      {
        scope: '',
        key,
        fingerprint: fingerprint({ method: 'POST', path: '/pay', body, contentType: 'application/json' }),
      },
      async (client) => {
        const exec = randomUUID();
        writeSync(1, `work ${key} ${exec} ${now()}\n`);
        await client.query(`INSERT INTO ${config.payments} (key, exec, pid) VALUES ($1, $2, $3)`, [
          key,
          exec,
          process.pid,
        ]);
        await sleep(minDelay + Math.floor(Math.random() * (maxDelay - minDelay + 1)));
        return {
          status: 200,
          headers: [['content-type', 'application/json']],
          body: new TextEncoder().encode(JSON.stringify({ exec, key })),
        };
      },
    );
    return send(reply, response);
  } catch (error) {
    if (isOncelyError(error)) return send(reply, problemResponse(error));
    throw error;
  }
});

await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`listening on http://127.0.0.1:${(app.server.address() as AddressInfo).port}\n`);
process.once('SIGTERM', () => {
  void app
    .close()
    .then(() => store.close())
    .then(() => pool.end())
    .finally(() => process.exit(0));
});
