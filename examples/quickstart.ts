// The smallest working Oncely program: one payment charged through the engine on the embedded
// SQLite store, then every way a retry can arrive. Run it with `npm run quickstart`.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createOncely, fingerprint, isOncelyError, type OncelyEvent, recordId } from '@oncely/core';
import { sqliteStore } from '@oncely/sqlite';

const file = join(tmpdir(), `oncely-quickstart-${process.pid}.db`);
const store = sqliteStore({ database: file });
const events: string[] = [];
const oncely = createOncely({
  store,
  leaseMs: 300, // short, so the crash below is taken over quickly
  onEvent: (e: OncelyEvent) => events.push(e.type),
});

// The side effect we must never repeat: a charge at a payment provider.
const charges: Array<{ id: string; amount: number }> = [];
async function charge(amount: number): Promise<{ chargeId: string; amount: number }> {
  await sleep(50); // the provider is slow; that is when clients time out and retry
  const id = `ch_${randomUUID().slice(0, 8)}`;
  charges.push({ id, amount });
  return { chargeId: id, amount };
}

const key = 'order_1001:pay:1';
const payment = (amount: number) =>
  fingerprint({ method: 'POST', path: '/payments', body: JSON.stringify({ amount }) });
const pay = (amount: number, k = key) =>
  oncely.run({ scope: 'merchant_42', key: k, fingerprint: payment(amount) }, () => charge(amount));

function say(step: string, outcome: unknown): void {
  const text = isOncelyError(outcome) ? `${outcome.status} ${outcome.code}` : JSON.stringify(outcome);
  console.log(`${step.padEnd(58)} -> ${text}   (charges so far: ${charges.length})`);
}
const attempt = async (step: string, work: () => Promise<unknown>) => {
  try {
    say(step, await work());
  } catch (error) {
    say(step, error);
  }
};

console.log(`Oncely quickstart on SQLite (${file})\n`);
const first = pay(1999);
await sleep(10);
const duplicate = pay(1999).catch((error: unknown) => error);
await attempt('1. first request: charge 19.99', () => first);
await attempt('2. a duplicate that arrived while the first still ran', () => duplicate);
await attempt('3. the client timed out and retries with the same key', () => pay(1999));
await attempt('4. same key, different amount', () => pay(2500));

// A worker takes a key and dies before finishing: no renewal, no release. Its lease lapses and the
// next retry takes the key over instead of being locked out for the whole retention period.
const crashedKey = 'order_1002:pay:1';
const now = Date.now();
await store.acquire({
  id: recordId('merchant_42', crashedKey),
  fingerprint: payment(500),
  token: 'worker-that-died',
  now,
  leaseUntil: now + 300,
  expiresAt: now + 60_000,
});
await attempt('5. retry right after a worker crashed holding the key', () => pay(500, crashedKey));
await sleep(320);
await attempt('6. retry once the crashed worker\u2019s lease lapsed', () => pay(500, crashedKey));

console.log(`\nCharges made: ${charges.length} (one per order, whatever the retries).`);
console.log(`Engine events: ${events.join(', ')}`);
await store.close();
for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
