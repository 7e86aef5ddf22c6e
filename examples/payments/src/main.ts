// `npm start`: the payments demo on Fastify and the embedded SQLite store.
import { join } from 'node:path';
import { sqliteStore } from '@oncely/sqlite';
import { buildPaymentsApp } from './app.ts';
import { openPaymentsDb } from './payments-db.ts';
import { fakeProvider } from './provider.ts';

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
const dataDir = process.env.ONCELY_DEMO_DIR ?? process.cwd();
const db = openPaymentsDb(join(dataDir, 'payments-demo.db'));
const store = sqliteStore({ database: join(dataDir, 'oncely-demo.db') });
// Test hooks (examples/payments/src/crash.test.ts): a short lease, and a crash between charge and record.
const leaseMs = process.env.ONCELY_DEMO_LEASE_MS ? Number(process.env.ONCELY_DEMO_LEASE_MS) : undefined;
const crashAfterCharge = process.env.ONCELY_DEMO_CRASH_AFTER_CHARGE === '1';
// The retry storm's control run (src/storm.ts --no-idempotency) plays a naive API: no Oncely, and
// the provider gets a fresh key on every run of the handler.
const idempotencyOff = process.env.ONCELY_DEMO_IDEMPOTENCY === 'off';
const app = await buildPaymentsApp({
  db,
  provider: fakeProvider(db, { latencyMs: 200 }),
  idempotency: idempotencyOff ? false : { store, ...(leaseMs ? { leaseMs } : {}) },
  ...(crashAfterCharge ? { afterCharge: () => void process.kill(process.pid, 'SIGKILL') } : {}),
});
const url = await app.listen({ port, host });
const key = `order_${Date.now()}:pay:1`;
const curl = (amount: number) =>
  `curl -i -X POST ${url}/payments -H 'Authorization: Bearer sk_test_demo' -H 'Idempotency-Key: ${key}' ` +
  `-H 'Content-Type: application/json' -d '{"amount":${amount},"currency":"eur","customer":"cus_42"}'`;
if (idempotencyOff) console.log('ONCELY_DEMO_IDEMPOTENCY=off: every retry runs and charges again.');
console.log(`Oncely payments demo listening on ${url}

1. A first payment (201, a new charge):
   ${curl(1999)}

2. Its retry, same key and body (201 again, same payment, Idempotent-Replayed: true, no new charge):
   ${curl(1999)}

3. The same key with another amount (422 ERR_ONCELY_KEY_REUSED):
   ${curl(2500)}

Count the charges: curl -s '${url}/payments?customer=cus_42' -H 'Authorization: Bearer sk_test_demo'
`);

const shutdown = async () => {
  await app.close();
  await store.close();
  db.close();
  process.exit(0);
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
