/**
 * npm run demo:orders [-- --broker rabbitmq] [--orders N] [--faults SECONDS]
 *
 * Seven processes (the orchestrator and six participants) over PostgreSQL and NATS JetStream (or
 * RabbitMQ): N orders, each a saga through payment, stock, fulfilment, notification, loyalty points
 * and the shipping label. With --faults, processes are SIGKILLed at random and the broker connection
 * is cut and restored for that long. Ends with the audit, read from the databases.
 */
import { parseArgs } from 'node:util';
import { runDemo } from './demo.ts';

const { values } = parseArgs({
  options: {
    broker: { type: 'string', default: 'nats' },
    orders: { type: 'string', default: '20' },
    faults: { type: 'string', default: '0' },
  },
});
if (values.broker !== 'nats' && values.broker !== 'rabbitmq') throw new Error('--broker is nats or rabbitmq');
const audit = await runDemo({
  broker: values.broker,
  orders: Number(values.orders),
  faultsMs: Number(values.faults) * 1000,
  settleTimeoutMs: 120_000,
  log: (line) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
});
console.log('\naudit');
console.log(JSON.stringify(audit, null, 2));
const ok =
  audit.lost === 0 &&
  audit.inconsistent === 0 &&
  audit.notTerminal === 0 &&
  audit.duplicateEffects === 0 &&
  audit.compensationsRunTwice === 0 &&
  audit.unpublished === 0 &&
  audit.duplicateCharges === 0;
console.log(ok ? 'OK: every order terminal, every effect once' : 'FAILED');
process.exitCode = ok ? 0 : 1;
