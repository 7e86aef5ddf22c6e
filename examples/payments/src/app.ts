import { randomBytes } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';
import type { HttpIdempotencyOptions } from '@oncely/core';
import { idempotency } from '@oncely/fastify';
import Fastify, { type FastifyInstance } from 'fastify';
import { forwardKey } from './forward-key.ts';
import type { Payment } from './payments-db.ts';
import type { PaymentProvider } from './provider.ts';

export interface PaymentsAppOptions {
  db: DatabaseSync;
  provider: PaymentProvider;
  /** Oncely options (the store at least); `false` builds the naive API the retry storm compares against. */
  idempotency: HttpIdempotencyOptions | false;
  /** Test hook: runs after the provider charged and before the payment is recorded (e.g. to crash). */
  afterCharge?: () => void | Promise<void>;
}

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

/** The bearer token is the tenant: keys of one API key never meet another's. */
function apiKey(authorization: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  return match?.[1];
}

/**
 * The demo payments API on Fastify and Oncely. Validation (JSON schema) runs before the idempotency
 * hook, so a malformed request is a 400 that records nothing and can be fixed and retried.
 */
export async function buildPaymentsApp(options: PaymentsAppOptions): Promise<FastifyInstance> {
  const { db, provider } = options;
  const app = Fastify({ forceCloseConnections: true });
  const insert = db.prepare(
    `INSERT INTO payments (id, tenant, amount, currency, customer, charge_id, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (charge_id) DO NOTHING`,
  );
  const byCharge = db.prepare('SELECT * FROM payments WHERE tenant = ? AND charge_id = ?');
  const byId = db.prepare('SELECT * FROM payments WHERE tenant = ? AND id = ?');
  const byCustomer = db.prepare(
    'SELECT * FROM payments WHERE tenant = ? AND customer = ? ORDER BY created_at',
  );
  const toPayment = (row: Record<string, unknown>): Payment => ({
    id: String(row.id),
    status: 'succeeded',
    amount: Number(row.amount),
    currency: String(row.currency),
    customer: String(row.customer),
    charge_id: String(row.charge_id),
  });

  app.addHook('onRequest', async (request, reply) => {
    if (!apiKey(request.headers.authorization)) {
      return reply.code(401).type('application/problem+json').send({
        type: 'about:blank',
        title: 'Unauthorized',
        status: 401,
        detail: 'Send Authorization: Bearer <api-key>.',
      });
    }
  });

  if (options.idempotency) {
    await app.register(idempotency, {
      ...options.idempotency,
      scope: (request) => apiKey(request.headers.authorization),
      // Fail closed: a keyed request whose tenant cannot be told is refused, never put in a key
      // space shared by every account.
      requireScope: true,
    });
  }

  app.post<{ Body: PaymentInput }>(
    '/payments',
    { schema: { body: paymentBody }, config: { idempotency: { required: true } } },
    async (request, reply) => {
      const tenant = apiKey(request.headers.authorization)!;
      const { amount, currency, customer } = request.body;
      // The provider gets a key derived from the parsed key: a re-run of this handler (after a crash)
      // charges under the same provider key and gets the first charge back.
      // Without Oncely (the storm's control run) there is no stable key: like a naive API, every run
      // of the handler sends the provider a fresh one.
      const providerKey = request.idempotency
        ? forwardKey(tenant, request.idempotency.key, 'charge')
        : `naive_${randomBytes(12).toString('hex')}`;
      const charge = await provider.charge({ amount, currency, customer }, { idempotencyKey: providerKey });
      await options.afterCharge?.();
      // charge_id is unique: a re-run records nothing new and returns the payment the first run made.
      insert.run(
        `pay_${randomBytes(8).toString('hex')}`,
        tenant,
        amount,
        currency,
        customer,
        charge.id,
        Date.now(),
      );
      const payment = toPayment(byCharge.get(tenant, charge.id) as Record<string, unknown>);
      return reply.code(201).header('location', `/payments/${payment.id}`).send(payment);
    },
  );

  app.get<{ Params: { id: string } }>('/payments/:id', async (request, reply) => {
    const row = byId.get(apiKey(request.headers.authorization)!, request.params.id);
    if (!row)
      return reply.code(404).type('application/problem+json').send({ title: 'Not Found', status: 404 });
    return toPayment(row as Record<string, unknown>);
  });

  app.get<{ Querystring: { customer?: string } }>('/payments', async (request) => {
    const rows = byCustomer.all(apiKey(request.headers.authorization)!, request.query.customer ?? '');
    return { data: rows.map((row) => toPayment(row as Record<string, unknown>)) };
  });

  return app;
}
