// The proof under faults, short form: orders keep coming while the orchestrator and participants are
// SIGKILLed and restarted at random and the broker connection is cut and restored through the fault
// proxy; stock fails 1 order in 5 on purpose (compensated before the pivot) and shipping fails the
// first attempt of 1 in 4 (retried after it). The audit reads only the databases.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { type Audit, runDemo } from './demo.ts';

function assertSound(audit: Audit): void {
  const summary = JSON.stringify(audit);
  assert.equal(audit.lost, 0, summary);
  assert.equal(audit.notTerminal, 0, summary);
  assert.equal(audit.completed + audit.compensated, audit.orders, summary);
  assert.equal(audit.inconsistent, 0, summary);
  assert.equal(audit.duplicateEffects, 0, summary);
  assert.equal(audit.compensationsRunTwice, 0, summary);
  assert.equal(audit.duplicateCharges, 0, summary);
  assert.equal(audit.unpublished, 0, summary);
  assert.ok(audit.compensated >= 1, `some orders are out of stock on purpose: ${summary}`);
}

it('NATS JetStream, under SIGKILLs and broker cuts: no order lost, every effect once, every order terminal', async () => {
  const audit = await runDemo({
    broker: 'nats',
    orders: 25,
    faultsMs: 8_000,
    stepTimeoutMs: 8_000,
    settleTimeoutMs: 25_000,
  });
  assertSound(audit);
  assert.ok(audit.kills + audit.cuts >= 4, JSON.stringify(audit));
});

it('RabbitMQ, no faults: the same flow, the same audit', async () => {
  assertSound(
    await runDemo({ broker: 'rabbitmq', orders: 10, stepTimeoutMs: 8_000, settleTimeoutMs: 15_000 }),
  );
});
