/**
 * The orchestrator, as a process of its own: its relay publishes the saga's commands, it consumes
 * the replies (through the saga's inbox) and sweeps timeouts and retries. Sagas are started by the
 * order service (main.ts) in its own transactions.
 */
import { outbox, relay } from '@oncely/outbox';
import pg from 'pg';
import { connectBroker } from './broker.ts';
import { type DemoConfig, orderSaga, tables } from './flow.ts';

const config = JSON.parse(process.argv[2]!) as DemoConfig;
const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 8 });
pool.on('error', () => {});
const order = orderSaga(config);
const box = outbox({ table: tables(config.prefix).outbox('orchestrator') });
const broker = await connectBroker(config);
relay({ pool, outbox: box, publisher: broker.publisher, registry: null, pollIntervalMs: 200 }).start();
await broker.subscribe('replies', async (message) => {
  const outcome = await order.handleReply(pool, message);
  box.notify();
  return outcome;
});
order.startSweeper({ pool, intervalMs: 200, onError: () => {} });
process.stdout.write('ready orchestrator\n');
