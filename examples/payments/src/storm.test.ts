// A smaller `npm run demo:storm`: the demo as a process behind the fault proxy, 100 payments through
// @oncely/client. With idempotency every payment is recorded and charged exactly once although the
// proxy dropped answers the server had already sent; the control run on a naive API double-charges.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exactlyOnce, runStorm, STORM_DEFAULTS, type StormOptions } from './storm.ts';

const storm = (idempotency: boolean): StormOptions => ({
  payments: 100,
  workers: 20,
  idempotency,
  // The proxy draws one fault per request in arrival order, so with a fixed seed the faults among the
  // first 100 requests (at least one per payment) are the same on every run: 15 % of them drop the
  // answer after the server ran the payment (18 of the first 100 with this seed), which is what a
  // naive API turns into a double charge.
  seed: 20_241_123,
  rates: STORM_DEFAULTS.rates,
  timeLimitMs: 60_000,
});

describe('retry storm', { timeout: 120_000 }, () => {
  it('with idempotency: every payment completed, recorded once and charged once', async () => {
    const report = await runStorm(storm(true));
    const { client, proxy, audit } = report;
    assert.ok(proxy.dropAfterResponse > 0 && proxy.reset > 0, 'the storm really dropped and reset');
    assert.ok(client.replays > 0, 'answers lost after execution came back as replays');
    assert.equal(client.failed, 0, JSON.stringify(client.failures));
    assert.equal(client.completed, 100);
    assert.ok(proxy.requests <= client.attempts, 'the proxy saw nothing the client did not send');
    assert.deepEqual(audit, {
      requested: 100,
      recorded: 100,
      recordedOnce: 100,
      charges: 100,
      chargedPayments: 100,
      doubleCharged: 0,
      extraCharges: 0,
    });
    assert.ok(exactlyOnce(report));
  });

  it('without idempotency: the same storm double-charges', async () => {
    const report = await runStorm(storm(false));
    const { proxy, audit } = report;
    assert.ok(proxy.dropAfterResponse > 0);
    assert.ok(audit.doubleCharged >= 1, `double charges: ${audit.doubleCharged}`);
    assert.ok(audit.extraCharges >= 1);
    assert.ok(audit.recorded > 100, 'a naive API records the payment again too');
    assert.equal(exactlyOnce(report), false);
  });
});
