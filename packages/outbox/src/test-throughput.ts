/**
 * Relay throughput on this machine's brokers, for docs/delivery.md (not a test: run it by hand).
 *   npx node --conditions=oncely:source packages/outbox/src/test-throughput.ts
 * Per broker and batch size: N messages on K keys inserted first, then `relays` relays drain the
 * table; msgs/s = N / (time to the last mark). The last row is one hot key: one message per cycle.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connectPostgres } from '@oncely/test-stores';
import { jetStreamPublisher } from './nats.ts';
import type { Publisher } from './publisher.ts';
import { rabbitMqPublisher } from './rabbitmq.ts';
import { relay } from './relay.ts';
import { connectAmqp, connectNats, testExchange, testOutbox, testStream } from './test-brokers.ts';

async function measure(
  name: string,
  publisher: Publisher,
  topic: string,
  batchSize: number,
  relays: number,
  N = 10_000,
  KEYS = 2_000,
) {
  const { pool, box, table, drop } = await testOutbox({ max: 4 });
  const relayPool = await connectPostgres({ max: 8 });
  try {
    // One statement per 1,000 rows: the producer side is not what is measured.
    for (let i = 0; i < N; i += 1000) {
      const tx = await pool.connect();
      await tx.query('BEGIN');
      for (let j = i; j < Math.min(N, i + 1000); j++) {
        await box.add(tx, {
          topic,
          key: `k${j % KEYS}`,
          type: 'bench',
          payload: { j, pad: 'x'.repeat(200) },
        });
      }
      await tx.query('COMMIT');
      tx.release();
    }
    const workers = Array.from({ length: relays }, () =>
      relay({
        pool: relayPool,
        outbox: box,
        publisher,
        batchSize,
        registry: null,
        cleanupIntervalMs: 0,
        statsIntervalMs: 0,
      }),
    );
    const started = performance.now();
    await Promise.all(
      workers.map(async (r) => {
        for (let idle = 0; idle < 3; ) {
          if ((await r.runOnce()).claimed === 0) {
            idle++;
            await sleep(5);
          } else idle = 0;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE state = 'published'`);
    if (rows[0].n !== N) throw new Error(`${name}: ${rows[0].n} of ${N} published`);
    console.log(
      `${name.padEnd(9)} batch ${String(batchSize).padStart(4)}  relays ${relays}  keys ${String(KEYS).padStart(4)}  ` +
        `${Math.round(N / seconds)} msgs/s`,
    );
  } finally {
    await relayPool.end();
    await drop();
  }
}

const nc = await connectNats();
const stream = await testStream(nc);
const connection = await connectAmqp();
const exchange = await testExchange(connection);
const rabbit = rabbitMqPublisher({ connection, exchange: exchange.exchange });
try {
  for (const [batch, relays] of [
    [20, 1],
    [100, 1],
    [500, 1],
    [100, 4],
  ] as const) {
    await measure(
      'jetstream',
      jetStreamPublisher({ connection: nc }),
      stream.subject('bench'),
      batch,
      relays,
    );
    await measure('rabbitmq', rabbit, 'bound.bench', batch, relays);
  }
  await measure(
    'jetstream',
    jetStreamPublisher({ connection: nc }),
    stream.subject('bench'),
    100,
    1,
    2000,
    1,
  );
  await measure('rabbitmq', rabbit, 'bound.bench', 100, 1, 2000, 1);
} finally {
  await rabbit.close();
  await exchange.remove();
  await connection.close();
  await stream.remove();
  await nc.close();
}
