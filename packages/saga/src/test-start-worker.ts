// A process that starts a saga, commits, and then hangs until it is SIGKILLed: the crash between
// committing the saga's state and any relay publishing its first command.
import { inbox } from '@oncely/consumer';
import { outbox } from '@oncely/outbox';
import pg from 'pg';
import { saga } from './saga.ts';

const config = JSON.parse(process.argv[2]!) as {
  databaseUrl: string;
  tables: { outbox: string; inbox: string; saga: string };
  topic: string;
  id: string;
};
const pool = new pg.Pool({ connectionString: config.databaseUrl });
const order = saga({
  name: 'order',
  outbox: outbox({ table: config.tables.outbox }),
  inbox: inbox({ consumer: 'saga-replies', retentionMs: 86_400_000, table: config.tables.inbox }),
  replyTopic: `${config.topic}.replies`,
  table: config.tables.saga,
  steps: [
    {
      name: 'reserve',
      kind: 'pivot',
      action: {
        command: (c) => ({ topic: `${config.topic}.reserve`, type: 'stock.reserve', payload: c.data }),
      },
    },
  ],
});
const tx = await pool.connect();
await tx.query('BEGIN');
await order.start(tx, { id: config.id, data: { orderId: config.id } });
await tx.query('COMMIT');
process.stdout.write('committed\n');
setInterval(() => {}, 60_000);
