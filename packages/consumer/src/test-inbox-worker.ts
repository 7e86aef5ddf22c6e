/**
 * A child process for inbox-crash.test.ts: takes one delivery from a JetStream consumer, handles it
 * in transactional mode (inserting an invoice), and stops at a crash point announced on stdout,
 * where the parent SIGKILLs it:
 *
 * - `before-commit`: the handler's INSERT is done, the transaction is open. Prints `inserted <pid>`
 *   (`<pid>` is the server process of the transaction's connection) and waits for good.
 * - `before-ack`: the transaction committed; the delivery is not acked. Prints `committed`, then
 *   blocks its thread: the ack is never sent.
 */
import { writeSync } from 'node:fs';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { inbox, jetStreamMessage } from './index.ts';
import { DATABASE_URL, NATS_URL } from './test-services.ts';

/** Parent → worker, as JSON in argv[2]. */
export interface InboxCrashConfig {
  mode: 'before-commit' | 'before-ack';
  stream: string;
  durable: string;
  table: string;
  invoices: string;
  consumer: string;
}

// Synchronous writes: the parent must see the line even though this process is killed right after.
const say = (line: string): void => {
  writeSync(1, `${line}\n`);
};

async function main(config: InboxCrashConfig): Promise<void> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const nc = await connect({ servers: NATS_URL });
  const consumer = await jetstream(nc).consumers.get(config.stream, config.durable);
  const delivery = await consumer.next({ expires: 5000 });
  if (delivery === null) throw new Error('no message was delivered');
  const box = inbox({ consumer: config.consumer, retentionMs: 60_000, table: config.table });
  await box.handle(pool, jetStreamMessage(delivery), async (tx, message) => {
    const backend = (await tx.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await tx.query(`INSERT INTO ${config.invoices} (message_id) VALUES ($1)`, [message.id]);
    if (config.mode === 'before-commit') {
      say(`inserted ${backend}`);
      await new Promise(() => setInterval(() => {}, 1000));
    }
  });
  say('committed');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}

main(JSON.parse(process.argv[2] ?? '{}') as InboxCrashConfig).catch((error: unknown) => {
  say(`error ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
