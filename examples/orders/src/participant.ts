/**
 * One participant, as a process of its own: consumes its commands, does its effect once per
 * forwarded key (its inbox is keyed by `Idempotency-Key`, not the message id: a resend is a new
 * message with the same key), and adds the reply to its own outbox in the same transaction; its own
 * relay publishes the replies. The payment participant charges the payments demo's fake provider
 * with the key forwarded, so a crash between the charge and the commit charges once.
 *
 * Usage (spawned by main.ts): node participant.ts <name> '<DemoConfig JSON>'
 */
import { createHash } from 'node:crypto';
import { inbox, type Message } from '@oncely/consumer';
import { DAY } from '@oncely/core';
import { outbox, relay } from '@oncely/outbox';
import { type StepReply, sagaCommand, sagaReply } from '@oncely/saga';
import pg from 'pg';
import { openPaymentsDb } from '../../payments/src/payments-db.ts';
import { fakeProvider } from '../../payments/src/provider.ts';
import { connectBroker } from './broker.ts';
import { type DemoConfig, type Participant, tables } from './flow.ts';

const name = process.argv[2] as Participant;
const config = JSON.parse(process.argv[3]!) as DemoConfig;
const t = tables(config.prefix);
const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 5 });
pool.on('error', () => {});
const box = outbox({ table: t.outbox(name) });
const commands = inbox({ consumer: name, retentionMs: 14 * DAY, table: t.inbox });
const provider = name === 'payment' ? fakeProvider(openPaymentsDb(config.providerDb)) : undefined;

/** Deterministic faults on purpose: 1 order in 5 is out of stock; shipping fails the first attempt of 1 in 4. */
const bucket = (id: string, n: number): number => createHash('sha256').update(id).digest()[0]! % n;

async function act(tx: pg.PoolClient, message: Message): Promise<StepReply> {
  const command = sagaCommand(message);
  if (command.phase === 'compensation') return { ok: true, result: { undone: command.step } };
  // A command redelivered after its compensation (a timeout turned the saga around, then the
  // broker brought the command back): refused, or the undo would be undone.
  const undone = await tx.query(`SELECT 1 FROM ${t.effects} WHERE participant = $1 AND key = $2`, [
    name,
    `${command.idempotencyKey}:compensate`,
  ]);
  if ((undone.rowCount ?? 0) > 0) return { ok: false, error: 'already compensated' };
  if (name === 'payment') {
    const charge = await provider!.charge(
      { amount: 1200, currency: 'EUR', customer: command.sagaId },
      { idempotencyKey: command.idempotencyKey },
    );
    return { ok: true, result: { chargeId: charge.id } };
  }
  if (name === 'stock' && bucket(command.sagaId, 5) === 0) return { ok: false, error: 'out of stock' };
  if (name === 'shipping' && bucket(command.sagaId, 4) === 0 && command.attempt === 1) {
    return { ok: false, error: 'label service unavailable' };
  }
  return { ok: true, result: { by: name } };
}

const broker = await connectBroker(config);
const relayed = relay({
  pool,
  outbox: box,
  publisher: broker.publisher,
  registry: null,
  pollIntervalMs: 200,
});
relayed.start();
await broker.subscribe(name, async (message) => {
  const command = sagaCommand(message);
  const outcome = await commands.handle(pool, { ...message, id: command.idempotencyKey }, async (tx) => {
    const reply = await act(tx, message);
    if (reply.ok) {
      await tx.query(`INSERT INTO ${t.effects} (participant, key, phase) VALUES ($1, $2, $3)`, [
        name,
        command.idempotencyKey,
        command.phase,
      ]);
    }
    await box.add(tx, sagaReply(message, reply));
  });
  box.notify();
  return outcome;
});
process.stdout.write(`ready ${name}\n`);
