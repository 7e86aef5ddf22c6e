// The payments example in transactional mode, as docs/postgres.md shows it: a Fastify POST /payments
// whose payment INSERT and the completion of its idempotency record commit in one transaction. The
// code between the docs markers is quoted verbatim by the docs (a test below keeps them equal), so
// the snippet there is type-checked and exercised here against PostgreSQL.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import {
  createOncely,
  fingerprint,
  isOncelyError,
  OncelyError,
  parseIdempotencyKey,
  problemResponse,
  type StoredResponse,
} from '@oncely/core';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type pg from 'pg';
import { forwardKey } from '../../../examples/payments/src/forward-key.ts';
import { openPaymentsDb } from '../../../examples/payments/src/payments-db.ts';
import { fakeProvider, type PaymentProvider } from '../../../examples/payments/src/provider.ts';
import { postgresStore, type Transactional, transactional } from './index.ts';
import { countRows, testPool, uniqueName } from './test-database.ts';

// docs:start payments-route
const paymentBody = {
  type: 'object',
  required: ['amount', 'currency', 'customer'],
  additionalProperties: false,
  properties: {
    amount: { type: 'integer', minimum: 1, maximum: 100_000_000 },
    currency: { type: 'string', pattern: '^[a-z]{3}$' },
    customer: { type: 'string', minLength: 1, maxLength: 100 },
  },
} as const;

interface PaymentInput {
  amount: number;
  currency: string;
  customer: string;
}

/** POST /payments: the payment row and the idempotency record commit in one transaction. */
export function paymentsRoute(
  app: FastifyInstance,
  tx: Transactional<pg.PoolClient>,
  provider: PaymentProvider,
) {
  app.post<{ Body: PaymentInput }>('/payments', { schema: { body: paymentBody } }, async (request, reply) => {
    const tenant = request.headers.authorization ?? ''; // the scope: one key space per API key
    const parsed = parseIdempotencyKey(request.headers['idempotency-key']);
    if (!parsed.ok) {
      const error =
        parsed.reason === 'missing'
          ? new OncelyError('ERR_ONCELY_KEY_MISSING', 'Send an Idempotency-Key header.')
          : new OncelyError('ERR_ONCELY_KEY_INVALID', parsed.detail);
      return send(reply, problemResponse(error));
    }
    const { key } = parsed;
    const body = JSON.stringify(request.body);
    try {
      const { response } = await tx.execute(
        {
          scope: tenant,
          key,
          fingerprint: fingerprint({
            method: 'POST',
            path: '/payments',
            body,
            contentType: 'application/json',
          }),
        },
        async (client) => {
          const { amount, currency, customer } = request.body;
          // Not undone by a rollback: a re-run after a crash must charge under the same provider key.
          const charge = await provider.charge(
            { amount, currency, customer },
            { idempotencyKey: forwardKey(tenant, key, 'charge') },
          );
          // On the transaction's connection: commits together with the record, or not at all.
          const { rows } = await client.query(
            `INSERT INTO payments (tenant, amount, currency, customer, charge_id)
             VALUES ($1, $2, $3, $4, $5) RETURNING id, amount, currency, customer, charge_id`,
            [tenant, amount, currency, customer, charge.id],
          );
          const payment = rows[0];
          return {
            status: 201,
            headers: [
              ['content-type', 'application/json; charset=utf-8'],
              ['location', `/payments/${payment.id}`],
            ],
            body: new TextEncoder().encode(JSON.stringify(payment)),
          };
        },
      );
      return send(reply, response);
    } catch (error) {
      // 409 in progress, 422 key reused, 503 store down, 500 lease lost: RFC 9457 problems.
      if (isOncelyError(error)) return send(reply, problemResponse(error));
      throw error; // the work failed: rolled back, key released, Fastify answers 500
    }
  });
}

function send(reply: FastifyReply, response: StoredResponse) {
  for (const [name, value] of response.headers) reply.header(name, value);
  return reply.code(response.status).send(Buffer.from(response.body));
}
// docs:end payments-route

describe('payments route in transactional mode (Fastify)', () => {
  let pool: pg.Pool;
  let app: FastifyInstance;
  let url: string;
  const schema = uniqueName('oncely_payments');
  const providerDb = openPaymentsDb(':memory:');
  let failCharges = false;
  const provider: PaymentProvider = {
    async charge(request, options) {
      if (failCharges) throw new Error('provider unavailable');
      return fakeProvider(providerDb).charge(request, options);
    },
  };

  before(async () => {
    const admin = await testPool({ max: 1 });
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    // The app's own schema: unqualified names (payments, oncely_records) resolve there, as in the docs.
    pool = await testPool({ max: 10, options: `-c search_path=${schema}` });
    await pool.query(`CREATE TABLE payments (
      id bigserial PRIMARY KEY,
      tenant text NOT NULL,
      amount integer NOT NULL,
      currency text NOT NULL,
      customer text NOT NULL,
      charge_id text NOT NULL UNIQUE
    )`);
    const store = postgresStore({ pool });
    await store.migrate();
    const tx = transactional({ oncely: createOncely({ store }), store, pool });
    app = Fastify();
    paymentsRoute(app, tx, provider);
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });
  after(async () => {
    await app?.close();
    await pool?.query(`DROP SCHEMA ${schema} CASCADE`);
    await pool?.end();
    providerDb.close();
  });

  const pay = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${url}/payments`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk_a', 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const charges = (): number =>
    (providerDb.prepare('SELECT COUNT(*) AS n FROM provider_charges').get() as { n: number }).n;
  const order = { amount: 1999, currency: 'eur', customer: 'cus_1' };

  it('creates one payment and replays it on retry, byte for byte', async () => {
    const first = await pay(order, { 'idempotency-key': 'order_1:pay:1' });
    assert.equal(first.status, 201);
    const payment = (await first.json()) as Record<string, unknown>;
    assert.equal(first.headers.get('location'), `/payments/${payment.id}`);
    const retry = await pay(
      { currency: 'eur', customer: 'cus_1', amount: 1999 },
      { 'idempotency-key': 'order_1:pay:1' },
    );
    assert.equal(retry.status, 201);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.equal(retry.headers.get('location'), `/payments/${payment.id}`);
    assert.deepEqual(await retry.json(), payment);
    assert.equal(await countRows(pool, 'payments', 'customer = $1', ['cus_1']), 1);
    assert.equal(charges(), 1);
  });

  it('answers problems: 400 without a key, 422 for a reused key, 409 while in progress', async () => {
    const missing = await pay(order);
    assert.equal(missing.status, 400);
    assert.equal(missing.headers.get('content-type'), 'application/problem+json');
    assert.equal(((await missing.json()) as { code: string }).code, 'ERR_ONCELY_KEY_MISSING');
    assert.equal((await pay(order, { 'idempotency-key': 'bad key' })).status, 400);
    await pay({ ...order, customer: 'cus_2' }, { 'idempotency-key': 'order_2:pay:1' });
    const reused = await pay(
      { ...order, customer: 'cus_2', amount: 5 },
      { 'idempotency-key': 'order_2:pay:1' },
    );
    assert.equal(reused.status, 422);

    const burst = await Promise.all(
      Array.from({ length: 10 }, () =>
        pay({ ...order, customer: 'cus_3' }, { 'idempotency-key': 'order_3:pay:1' }),
      ),
    );
    const statuses = burst.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 201).length >= 1, true, statuses.join(','));
    assert.ok(
      statuses.every((s) => s === 201 || s === 409),
      statuses.join(','),
    );
    assert.equal(await countRows(pool, 'payments', 'customer = $1', ['cus_3']), 1);
  });

  it('rolls back and frees the key when the work fails; the retry pays once', async () => {
    failCharges = true;
    const failed = await pay({ ...order, customer: 'cus_4' }, { 'idempotency-key': 'order_4:pay:1' });
    failCharges = false;
    assert.equal(failed.status, 500);
    assert.equal(await countRows(pool, 'payments', 'customer = $1', ['cus_4']), 0);
    const retry = await pay({ ...order, customer: 'cus_4' }, { 'idempotency-key': 'order_4:pay:1' });
    assert.equal(retry.status, 201);
    assert.equal(await countRows(pool, 'payments', 'customer = $1', ['cus_4']), 1);
  });

  it('is quoted verbatim by docs/postgres.md', async () => {
    const source = await readFile(new URL(import.meta.url), 'utf8');
    const docs = await readFile(new URL('../../../docs/postgres.md', import.meta.url), 'utf8');
    const snippet = source
      .split('// docs:start payments-route\n')[1]!
      .split('// docs:end payments-route')[0]!;
    assert.ok(docs.includes(snippet), 'docs/postgres.md quotes the route exactly as compiled here');
  });
});
