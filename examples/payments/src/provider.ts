import { randomBytes } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';

export interface ChargeRequest {
  amount: number;
  currency: string;
  customer: string;
}

export interface Charge extends ChargeRequest {
  id: string;
}

/** The fake payment provider's API: like a real one, it honours an idempotency key of its own. */
export interface PaymentProvider {
  charge(request: ChargeRequest, options: { idempotencyKey: string }): Promise<Charge>;
}

/**
 * A fake payment provider: a module of the example, not a second server. Charges live in the
 * `provider_charges` table so anyone can count them. A repeated idempotency key returns the first
 * charge instead of charging again, which is what makes a crash between "charged" and "recorded"
 * harmless once the API forwards a stable key.
 */
export function fakeProvider(db: DatabaseSync, options: { latencyMs?: number } = {}): PaymentProvider {
  const find = db.prepare(
    'SELECT id, amount, currency, customer FROM provider_charges WHERE idempotency_key = ?',
  );
  const insert = db.prepare(
    `INSERT INTO provider_charges (id, idempotency_key, amount, currency, customer, created_at)
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING`,
  );
  return {
    async charge(request, { idempotencyKey }) {
      if (options.latencyMs) await new Promise((resolve) => setTimeout(resolve, options.latencyMs));
      const id = `ch_${randomBytes(8).toString('hex')}`;
      insert.run(id, idempotencyKey, request.amount, request.currency, request.customer, Date.now());
      const row = find.get(idempotencyKey) as unknown as Charge;
      return { id: row.id, amount: row.amount, currency: row.currency, customer: row.customer };
    },
  };
}
