/**
 * Test helpers: the real PostgreSQL, NATS JetStream and RabbitMQ, names of their own per test, and a
 * child-process harness for crash tests. An unreachable server fails the tests with a message that
 * says so; nothing is ever skipped.
 */

import { randomBytes } from 'node:crypto';

import { AckPolicy, type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import {
  type NatsConnection,
  nanos,
  connect as natsConnect,
  headers as natsHeaders,
} from '@nats-io/transport-node';
import amqp from 'amqplib';
import pg from 'pg';

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** A fresh identifier for this run: `<prefix>_<12 hex>`, valid as a table, stream or queue name. */
export const uniqueName = (prefix: string): string => `${prefix}_${randomBytes(6).toString('hex')}`;

const unreachable = (what: string, url: string, variable: string, error: unknown): Error =>
  new Error(
    `${what} is not reachable at ${url} (set ${variable} to a server the tests may use): ` +
      `${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );

/** A pool on DATABASE_URL, checked with one query, so an unreachable server fails loudly and early. */
export async function testPool(config: pg.PoolConfig = {}): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, connectionTimeoutMillis: 5000, ...config });
  // An idle client whose server process ends (a killed child's session) emits 'error' on the pool.
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => {});
    throw unreachable('PostgreSQL', DATABASE_URL, 'DATABASE_URL', error);
  }
  return pool;
}

/** Drop the given tables, ignoring ones that do not exist. */
export async function dropTables(pool: pg.Pool, ...tables: string[]): Promise<void> {
  for (const table of tables) await pool.query(`DROP TABLE IF EXISTS ${table} CASCADE`);
}

/** Rows of `table` matching `where`. */
export async function countRows(pool: pg.Pool, table: string, where = 'true', values: unknown[] = []) {
  const result = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`, values);
  return result.rows[0].n as number;
}

/** A NATS connection to NATS_URL with JetStream, failing loudly when unreachable. */
export async function testNats(): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  let nc: NatsConnection;
  try {
    nc = await natsConnect({ servers: NATS_URL, timeout: 5000 });
  } catch (error) {
    throw unreachable('NATS', NATS_URL, 'NATS_URL', error);
  }
  try {
    return { nc, jsm: await jetstreamManager(nc) };
  } catch (error) {
    await nc.close();
    throw new Error(`NATS at ${NATS_URL} answers, but without JetStream (start nats-server -js)`, {
      cause: error,
    });
  }
}

/** The envelope's NATS headers, as the outbox relay sets them. */
export function envelopeHeaders(fields: {
  id?: string;
  type?: string;
  key?: string;
  extra?: Record<string, string>;
}) {
  const h = natsHeaders();
  if (fields.id !== undefined) h.set('Nats-Msg-Id', fields.id);
  if (fields.type !== undefined) h.set('Oncely-Type', fields.type);
  if (fields.key !== undefined) h.set('Oncely-Key', fields.key);
  h.set('Content-Type', 'application/json');
  for (const [name, value] of Object.entries(fields.extra ?? {})) h.set(name, value);
  return h;
}

/** An AMQP connection to AMQP_URL, failing loudly when unreachable. */
export async function testRabbit(): Promise<amqp.ChannelModel> {
  try {
    const connection = await amqp.connect(AMQP_URL);
    connection.on('error', () => {});
    return connection;
  } catch (error) {
    throw unreachable('RabbitMQ', AMQP_URL, 'AMQP_URL', error);
  }
}

/** A child process of a crash test: @oncely/conformance's one line worker. */
export { type LineWorker as Child, startLineWorker as startChild } from '@oncely/conformance';

/** Poll `check` until it returns true or `timeoutMs` passes (then fail with `what`). */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A stream of its own with one durable pull consumer (explicit acks), deleted by `remove()`. */
export async function testStream(
  jsm: JetStreamManager,
  options: { ackWaitMs?: number; duplicateWindowMs?: number; maxDeliver?: number } = {},
) {
  const stream = uniqueName('ONCELY');
  const subject = `${stream}.events`;
  const durable = uniqueName('durable');
  await jsm.streams.add({
    name: stream,
    subjects: [`${stream}.>`],
    ...(options.duplicateWindowMs === undefined
      ? {}
      : { duplicate_window: nanos(options.duplicateWindowMs) }),
  });
  await jsm.consumers.add(stream, {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(options.ackWaitMs ?? 1000),
    max_deliver: options.maxDeliver ?? -1,
  });
  return {
    stream,
    subject,
    durable,
    info: () => jsm.consumers.info(stream, durable),
    remove: async () => {
      await jsm.streams.delete(stream).catch(() => {});
    },
  };
}
