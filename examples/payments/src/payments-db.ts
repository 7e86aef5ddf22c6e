import { DatabaseSync } from 'node:sqlite';

/** A payment as the API returns it. */
export interface Payment {
  id: string;
  status: 'succeeded';
  amount: number;
  currency: string;
  customer: string;
  charge_id: string;
}

/**
 * The demo's own tables, in one SQLite file: `payments` (what the API recorded) and
 * `provider_charges` (what the fake provider charged). Counting both is the audit: a double charge
 * is two provider charges for one requested payment.
 */
export function openPaymentsDb(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA busy_timeout = 5000;
    CREATE TABLE IF NOT EXISTS provider_charges (
      id TEXT PRIMARY KEY,
      idempotency_key TEXT UNIQUE,
      amount INTEGER NOT NULL,
      currency TEXT NOT NULL,
      customer TEXT NOT NULL,
      created_at INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS payments (
      id TEXT PRIMARY KEY,
      tenant TEXT NOT NULL,
      amount INTEGER NOT NULL,
      currency TEXT NOT NULL,
      customer TEXT NOT NULL,
      charge_id TEXT NOT NULL UNIQUE,
      created_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS payments_customer ON payments (tenant, customer);
  `);
  return db;
}
