/**
 * A server process of the chaos test: a Fastify app with @oncely/fastify whose POST /pay calls the
 * counting upstream, the way a handler calls a payment provider. It shares the gateway's store and
 * lease, so a key can be run by either process, and replayed by either.
 *
 *   node --conditions=oncely:source adapter-server.ts '<AdapterConfig as JSON>'
 *
 * Prints `listening on http://127.0.0.1:<port>` once ready; SIGTERM closes it gracefully.
 */
import type { AddressInfo } from 'node:net';
import { idempotency } from '@oncely/fastify';
import Fastify from 'fastify';
import { openServerStore, type StoreConfig } from './server-store.ts';
import { PID_HEADER } from './upstream.ts';

export interface AdapterConfig {
  store: StoreConfig;
  leaseMs: number;
  upstream: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as AdapterConfig;
const { store, close } = await openServerStore(config.store);
const app = Fastify({ forceCloseConnections: true });
await app.register(idempotency, { store, leaseMs: config.leaseMs });

app.post('/pay', async (request, reply) => {
  const upstream = await fetch(`${config.upstream}/pay`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [PID_HEADER]: String(process.pid) },
    body: JSON.stringify(request.body),
    // A lost lease means another process owns the key now: stop, as the docs tell handlers to.
    signal: request.idempotency?.signal ?? null,
  });
  // The upstream's bytes, unchanged: the gateway relays the same bytes for the same execution.
  const body = await upstream.text();
  return reply
    .code(upstream.status)
    .header('content-type', upstream.headers.get('content-type') ?? 'application/json')
    .send(body);
});

await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`listening on http://127.0.0.1:${(app.server.address() as AddressInfo).port}\n`);
process.once('SIGTERM', () => {
  void app
    .close()
    .then(close)
    .finally(() => process.exit(0));
});
