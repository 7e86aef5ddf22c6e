/**
 * Test helpers: the real PostgreSQL, NATS JetStream and RabbitMQ of this machine, with names of their
 * own per test (tables, streams, exchanges, queues), all removed afterwards. An unreachable server
 * fails the tests with a message that says so; nothing is ever skipped.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { type JetStreamManager, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type ConnectionOptions, type NatsConnection, connect as natsConnect } from '@nats-io/transport-node';
import { connectPostgres, unique } from '@oncely/test-stores';
import amqp from 'amqplib';
import type pg from 'pg';
import { type Outbox, outbox } from './outbox.ts';

export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

const unreachable = (what: string, url: string, variable: string, error: unknown): Error =>
  new Error(
    `${what} is not reachable at ${url} (set ${variable} to a server these tests may use; ` +
      `.ci/run starts one): ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );

/** A pool on DATABASE_URL and an outbox on a table of its own, migrated; `drop()` removes the table. */
export async function testOutbox(config: pg.PoolConfig = {}): Promise<{
  pool: pg.Pool;
  box: Outbox;
  table: string;
  drop: () => Promise<void>;
}> {
  const pool = await connectPostgres({ max: 10, ...config });
  const table = `outbox_test_${unique()}`;
  const box = outbox({ table });
  await box.migrate(pool);
  return {
    pool,
    box,
    table,
    drop: async () => {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    },
  };
}

/** Run `work` in a transaction on a client of `pool`: COMMIT when it resolves, ROLLBACK when it throws. */
export async function inTransaction<T>(pool: pg.Pool, work: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
  const tx = await pool.connect();
  try {
    await tx.query('BEGIN');
    const result = await work(tx);
    await tx.query('COMMIT');
    return result;
  } catch (error) {
    await tx.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    tx.release();
  }
}

/** A NATS connection (to NATS_URL unless `servers` is given) with JetStream, failing loudly when unreachable. */
export async function connectNats(options: ConnectionOptions = {}): Promise<NatsConnection> {
  const servers = options.servers ?? NATS_URL;
  let nc: NatsConnection;
  try {
    nc = await natsConnect({ timeout: 5000, ...options, servers });
  } catch (error) {
    throw unreachable('NATS', String(servers), 'NATS_URL', error);
  }
  try {
    await jetstreamManager(nc);
  } catch (error) {
    await nc.close();
    throw new Error(`NATS at ${String(servers)} answers, but without JetStream (start nats-server -js)`, {
      cause: error,
    });
  }
  return nc;
}

/** A stream of its own capturing `<name>.>`; `subject(topic)` names a subject in it. */
export interface TestStream {
  name: string;
  subject(topic: string): string;
  /** Messages stored in the stream now. */
  count(): Promise<number>;
  /** Every stored message, in stream order (an ordered consumer). */
  messages(): Promise<JsMsg[]>;
  remove(): Promise<void>;
}

export async function testStream(nc: NatsConnection, options: { duplicateWindowMs?: number } = {}) {
  const jsm: JetStreamManager = await jetstreamManager(nc);
  const name = `OUTBOX_${unique()}`;
  await jsm.streams.add({
    name,
    subjects: [`${name}.>`],
    ...(options.duplicateWindowMs === undefined ? {} : { duplicate_window: options.duplicateWindowMs * 1e6 }),
  });
  const stream: TestStream = {
    name,
    subject: (topic) => `${name}.${topic}`,
    count: async () => (await jsm.streams.info(name)).state.messages,
    async messages() {
      const expected = await stream.count();
      const consumer = await jetstream(nc).consumers.get(name);
      const out: JsMsg[] = [];
      while (out.length < expected) {
        const batch = await consumer.fetch({ max_messages: expected - out.length, expires: 2000 });
        let got = 0;
        for await (const message of batch) {
          out.push(message);
          got++;
        }
        if (got === 0) throw new Error(`stream ${name}: read ${out.length} of ${expected} messages`);
      }
      return out;
    },
    remove: async () => {
      await jsm.streams.delete(name).catch(() => {});
    },
  };
  return stream;
}

/** An AMQP connection (to AMQP_URL unless `url` is given), failing loudly when unreachable. */
export async function connectAmqp(url = AMQP_URL): Promise<amqp.ChannelModel> {
  try {
    const connection = await amqp.connect(url, { noDelay: true });
    connection.on('error', () => {});
    return connection;
  } catch (error) {
    throw unreachable('RabbitMQ', url, 'AMQP_URL', error);
  }
}

/** A topic exchange of its own with one queue bound to `#`, both deleted by `remove()`. */
export interface TestExchange {
  exchange: string;
  queue: string;
  /** Wait until `count` messages arrived on the queue (acknowledged as they come), or fail after `timeoutMs`. */
  take(count: number, timeoutMs?: number): Promise<amqp.ConsumeMessage[]>;
  /** Messages waiting on the queue now. */
  depth(): Promise<number>;
  remove(): Promise<void>;
}

export async function testExchange(connection: amqp.ChannelModel): Promise<TestExchange> {
  const ch = await connection.createChannel();
  const exchange = `outbox_test_${unique()}`;
  const queue = `${exchange}_q`;
  await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
  await ch.assertQueue(queue, { durable: false, autoDelete: false });
  await ch.bindQueue(queue, exchange, 'bound.#');
  return {
    exchange,
    queue,
    async take(count, timeoutMs = 10_000) {
      const got: amqp.ConsumeMessage[] = [];
      let done: () => void = () => {};
      const all = new Promise<void>((resolve) => {
        done = resolve;
      });
      const { consumerTag } = await ch.consume(
        queue,
        (message) => {
          if (message === null) return;
          got.push(message);
          ch.ack(message);
          if (got.length >= count) done();
        },
        { noAck: false },
      );
      if (count === 0) done();
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        all.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      await ch.cancel(consumerTag);
      if (!finished) throw new Error(`queue ${queue}: took ${got.length} of ${count} messages`);
      return got;
    },
    depth: async () => (await ch.checkQueue(queue)).messageCount,
    remove: async () => {
      await ch.deleteQueue(queue).catch(() => {});
      await ch.deleteExchange(exchange).catch(() => {});
      await ch.close().catch(() => {});
    },
  };
}

/** Poll `check` until it returns true or `timeoutMs` passes (then fail with `what`). */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for: ${what}`);
    await sleep(10);
  }
}

/** A child process of a crash test: @oncely/conformance's one line worker. */
export { type LineWorker as Child, startLineWorker as startChild } from '@oncely/conformance';
