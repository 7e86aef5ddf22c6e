// A real crash: the demo process is SIGKILLed after the provider charged and before the payment was
// recorded. The retry, once the dead process's lease lapsed, runs the handler again; the forwarded
// key makes the provider return the first charge, so the customer is charged once.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDemo } from './demo-process.ts';
import { openPaymentsDb } from './payments-db.ts';

/** Long enough that starting a second process on a loaded CI machine stays well inside it. */
const LEASE_MS = 5_000;
const dir = mkdtempSync(join(tmpdir(), 'oncely-crash-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('charges once when the server dies between charging and recording', { timeout: 30_000 }, async () => {
  const request = (url: string) =>
    fetch(`${url}/payments`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk_a',
        'content-type': 'application/json',
        'idempotency-key': 'order_9:pay:1',
      },
      body: JSON.stringify({ amount: 500, currency: 'eur', customer: 'cus_9' }),
    });
  const doomed = await startDemo({
    ONCELY_DEMO_DIR: dir,
    ONCELY_DEMO_LEASE_MS: String(LEASE_MS),
    ONCELY_DEMO_CRASH_AFTER_CHARGE: '1',
  });
  const exited = new Promise((resolve) => doomed.child.once('exit', (_code, signal) => resolve(signal)));
  await assert.rejects(request(doomed.url), 'the connection dies with the process');
  // The key was acquired before the process died, so its lease ends no later than this.
  const leaseEndsBy = Date.now() + LEASE_MS;
  assert.equal(await exited, 'SIGKILL');

  const db = openPaymentsDb(join(dir, 'payments-demo.db'));
  const count = (table: string) =>
    (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  assert.equal(count('provider_charges'), 1, 'the provider charged');
  assert.equal(count('payments'), 0, 'nothing was recorded');

  const survivor = await startDemo({ ONCELY_DEMO_DIR: dir, ONCELY_DEMO_LEASE_MS: String(LEASE_MS) });
  after(() => survivor.child.kill('SIGTERM'));
  const early = await request(survivor.url);
  assert.equal(early.status, 409, 'the dead owner still holds its lease');
  await sleep(Math.max(0, leaseEndsBy - Date.now()) + 100);
  const retry = await request(survivor.url);
  assert.equal(retry.status, 201, 'after one lease the key is free again');
  assert.equal(count('provider_charges'), 1, 'charged once');
  assert.equal(count('payments'), 1, 'recorded once');
  db.close();
});
