import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sqliteStore } from '@oncely/sqlite';
import { buildPaymentsApp } from './app.ts';
import { openPaymentsDb } from './payments-db.ts';
import { fakeProvider } from './provider.ts';

const dir = mkdtempSync(join(tmpdir(), 'oncely-payments-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function start(name: string) {
  const db = openPaymentsDb(join(dir, `${name}-payments.db`));
  const store = sqliteStore({ database: join(dir, `${name}-oncely.db`), sweepIntervalMs: 0 });
  const app = await buildPaymentsApp({ db, provider: fakeProvider(db), idempotency: { store } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  after(async () => {
    await app.close();
    await store.close();
    db.close();
  });
  const pay = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${url}/payments`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk_a', 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const charges = () => (db.prepare('SELECT COUNT(*) AS n FROM provider_charges').get() as { n: number }).n;
  return { url, pay, charges, db };
}

const order = { amount: 1999, currency: 'eur', customer: 'cus_1' };

describe('payments demo', () => {
  it('creates a payment once and replays it on retry', async () => {
    const { url, pay, charges } = await start('replay');
    const first = await pay(order, { 'idempotency-key': 'order_1:pay:1' });
    assert.equal(first.status, 201);
    const payment = (await first.json()) as Record<string, unknown>;
    assert.match(String(payment.id), /^pay_/);
    assert.deepEqual(
      { ...payment, id: 'x', charge_id: 'y' },
      { id: 'x', status: 'succeeded', ...order, charge_id: 'y' },
    );
    assert.equal(first.headers.get('location'), `/payments/${payment.id}`);
    const retry = await pay(order, { 'idempotency-key': 'order_1:pay:1' });
    assert.equal(retry.status, 201);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(await retry.json(), payment);
    assert.equal(charges(), 1);
    const read = await fetch(`${url}/payments/${payment.id}`, { headers: { authorization: 'Bearer sk_a' } });
    assert.deepEqual(await read.json(), payment);
    const list = await fetch(`${url}/payments?customer=cus_1`, { headers: { authorization: 'Bearer sk_a' } });
    assert.deepEqual(await list.json(), { data: [payment] });
  });

  it('refuses the same key with another amount (422)', async () => {
    const { pay, charges } = await start('mismatch');
    assert.equal((await pay(order, { 'idempotency-key': 'k' })).status, 201);
    const reused = await pay({ ...order, amount: 2500 }, { 'idempotency-key': 'k' });
    assert.equal(reused.status, 422);
    assert.equal(((await reused.json()) as { code: string }).code, 'ERR_ONCELY_KEY_REUSED');
    assert.equal(charges(), 1);
  });

  it('answers 400 before anything runs: invalid body, missing key; 401 without an API key', async () => {
    const { pay, charges, url } = await start('invalid');
    assert.equal((await pay({ ...order, currency: 'EURO' }, { 'idempotency-key': 'k' })).status, 400);
    const fixed = await pay(order, { 'idempotency-key': 'k' });
    assert.equal(fixed.status, 201, 'the corrected retry with the same key runs');
    const missing = await pay(order);
    assert.equal(missing.status, 400);
    assert.equal(((await missing.json()) as { code: string }).code, 'ERR_ONCELY_KEY_MISSING');
    const anonymous = await fetch(`${url}/payments`, { method: 'POST', body: '{}' });
    assert.equal(anonymous.status, 401);
    assert.equal(charges(), 1);
  });

  it('keeps API keys apart: one idempotency key, two tenants, two payments', async () => {
    const { pay, charges } = await start('tenants');
    const a = await pay(order, { 'idempotency-key': 'same' });
    const b = await pay(order, { 'idempotency-key': 'same', authorization: 'Bearer sk_b' });
    assert.equal(b.headers.get('idempotent-replayed'), null);
    assert.notEqual(((await a.json()) as { id: string }).id, ((await b.json()) as { id: string }).id);
    assert.equal(charges(), 2);
  });
});
