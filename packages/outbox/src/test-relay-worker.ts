/**
 * A relay in a process of its own, for the tests that need real separate processes. Config is one JSON
 * argument; the worker talks in stdout lines (`ready`, `confirmed <ids>`, `violation <text>`, `stopped`).
 *
 * - mode `crash`: JetStream; after the broker confirmed its first batch it prints `confirmed` and then
 *   hangs before the relay can mark anything, so the test can SIGKILL it exactly between publish and mark.
 * - mode `run`: RabbitMQ; publishes until its stdin closes, then stops cleanly. Around every batch it
 *   holds its keys in a shared PostgreSQL table (primary key = key): if another process had one of them
 *   in flight, the insert finds it there, and the worker reports a violation.
 */
import { connect as natsConnect } from '@nats-io/transport-node';
import amqp from 'amqplib';
import pg from 'pg';
import { jetStreamPublisher } from './nats.ts';
import { outbox } from './outbox.ts';
import type { Publisher } from './publisher.ts';
import { rabbitMqPublisher } from './rabbitmq.ts';
import { relay } from './relay.ts';

interface Config {
  mode: 'crash' | 'run';
  databaseUrl: string;
  table: string;
  natsUrl?: string;
  amqpUrl?: string;
  exchange?: string;
  inflightTable?: string;
  leaseMs?: number;
}

const config = JSON.parse(process.argv[2]!) as Config;
const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 4 });
pool.on('error', () => {});
const box = outbox({ table: config.table });

if (config.mode === 'crash') {
  const nc = await natsConnect({ servers: config.natsUrl! });
  const inner = jetStreamPublisher({ connection: nc });
  const publisher: Publisher = {
    async publish(messages, options) {
      const results = await inner.publish(messages, options);
      say(`confirmed ${JSON.stringify(messages.filter((_, i) => results[i]?.ok).map((m) => m.id))}`);
      return new Promise(() => {}); // never returns: the relay never gets to mark
    },
  };
  const r = relay({
    pool,
    outbox: box,
    publisher,
    registry: null,
    leaseMs: config.leaseMs ?? 30_000,
    publishTimeoutMs: (config.leaseMs ?? 30_000) - 1,
  });
  say('ready');
  await r.runOnce();
} else {
  const connection = await amqp.connect(config.amqpUrl!);
  connection.on('error', () => {});
  const inner = rabbitMqPublisher({ connection, exchange: config.exchange! });
  const inflight = config.inflightTable!;
  let published = 0;
  const publisher: Publisher = {
    async publish(messages, options) {
      const keys = messages.map((m) => m.key);
      const ids = messages.map((m) => m.id);
      const { rows } = await pool.query(
        `INSERT INTO ${inflight} (key, id) SELECT * FROM unnest($1::text[], $2::uuid[])
         ON CONFLICT (key) DO NOTHING RETURNING key`,
        [keys, ids],
      );
      if (rows.length !== keys.length) {
        // A key of this batch was already in flight (elsewhere, or twice in this very batch).
        const held = rows.map((row) => row.key as string);
        say(`violation: of keys ${JSON.stringify(keys)} only ${JSON.stringify(held)} were free`);
      }
      try {
        return await inner.publish(messages, options);
      } finally {
        await pool.query(`DELETE FROM ${inflight} WHERE id = ANY($1::uuid[])`, [ids]);
      }
    },
  };
  const r = relay({
    pool,
    outbox: box,
    publisher,
    registry: null,
    pollIntervalMs: 20,
    batchSize: 20,
    cleanupIntervalMs: 0,
    statsIntervalMs: 0,
    onEvent: (event) => {
      if (event.type === 'published') published += event.count;
      if (event.type === 'error' || event.type === 'lost' || event.type === 'dead') {
        say(`event ${JSON.stringify(event, (_, v) => (v instanceof Error ? v.message : v))}`);
      }
    },
  });
  r.start();
  say('ready');
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('end', resolve));
  await r.stop();
  await inner.close();
  await connection.close();
  await pool.end();
  say(`stopped ${published}`);
}
