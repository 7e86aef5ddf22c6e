/**
 * Test harness: the real PostgreSQL (tables of their own per test), the real outbox relay, and a
 * publisher that hands messages to in-process participants instead of a broker, so a test can
 * deliver each message as often and as concurrently as it likes. The crash test uses JetStream.
 */
import { type Inbox, inbox, type Message } from '@oncely/consumer';
import { type Outbox, type OutboxMessage, outbox, type Publisher, type Relay, relay } from '@oncely/outbox';
import { connectPostgres, unique } from '@oncely/test-stores';
import type pg from 'pg';
import type { StepDefinition } from './definition.ts';
import { type SagaCommand, type StepReply, sagaCommand, sagaReply } from './protocol.ts';
import { type Saga, type SagaOptions, saga } from './saga.ts';

export interface Harness {
  pool: pg.Pool;
  box: Outbox;
  replies: Inbox;
  relay: Relay;
  tables: { outbox: string; inbox: string; saga: string; effects: string };
  /** Messages published and not yet delivered. */
  queue: OutboxMessage[];
  drop(): Promise<void>;
}

export async function harness(): Promise<Harness> {
  const pool = await connectPostgres({ max: 20 });
  const id = unique();
  const tables = {
    outbox: `saga_outbox_${id}`,
    inbox: `saga_inbox_${id}`,
    saga: `saga_state_${id}`,
    effects: `saga_effects_${id}`,
  };
  const box = outbox({ table: tables.outbox });
  await box.migrate(pool);
  const replies = inbox({ consumer: 'saga-replies', retentionMs: 86_400_000, table: tables.inbox });
  await replies.migrate(pool);
  await pool.query(
    `CREATE TABLE ${tables.effects} (seq bigserial, participant text NOT NULL, key text NOT NULL, phase text NOT NULL, at bigint NOT NULL)`,
  );
  const queue: OutboxMessage[] = [];
  const publisher: Publisher = {
    async publish(messages) {
      queue.push(...messages);
      return messages.map(() => ({ ok: true }));
    },
  };
  const relayed = relay({
    pool,
    outbox: box,
    publisher,
    registry: null,
    cleanupIntervalMs: 0,
    statsIntervalMs: 0,
  });
  return {
    pool,
    box,
    replies,
    relay: relayed,
    tables,
    queue,
    async drop() {
      for (const table of Object.values(tables)) await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    },
  };
}

/** A saga on the harness's tables. */
export function testSaga(h: Harness, steps: StepDefinition[], options: Partial<SagaOptions> = {}): Saga {
  return saga({
    name: 'order',
    steps,
    outbox: h.box,
    inbox: h.replies,
    replyTopic: 'saga.replies',
    table: h.tables.saga,
    retryDelayMs: 1,
    maxRetryDelayMs: 5,
    ...options,
  });
}

/** What a participant answers for a command; `undefined` sends no reply (a lost participant). */
export type Behaviour = (command: SagaCommand, message: Message) => StepReply | undefined;

/**
 * A participant as a real one is written: its inbox keyed by the forwarded idempotency key (so a
 * resend under another message id is still one effect), the effect row and the reply in one
 * transaction.
 */
export function participant(h: Harness, name: string, behaviour: Behaviour) {
  const box = inbox({ consumer: name, retentionMs: 86_400_000, table: h.tables.inbox });
  return async (message: Message): Promise<void> => {
    const command = sagaCommand(message);
    await box.handle(h.pool, { ...message, id: command.idempotencyKey }, async (tx) => {
      const reply = behaviour(command, message);
      if (reply === undefined) return;
      if (reply.ok) {
        await tx.query(
          `INSERT INTO ${h.tables.effects} (participant, key, phase, at) VALUES ($1, $2, $3, $4)`,
          [name, command.idempotencyKey, command.phase, Date.now()],
        );
      }
      await h.box.add(tx, sagaReply(message, reply));
    });
  };
}

/** The consumer's view of a published outbox message. */
export function delivered(message: OutboxMessage): Message {
  return {
    id: message.id,
    type: message.type,
    key: message.key,
    headers: message.headers,
    payload: message.payload,
    raw: message,
  };
}

/**
 * Publish and deliver until nothing moves: relay, then each message to the handler of its topic
 * (`deliver` decides how: once, twice, concurrently), then the saga's sweeper.
 */
export async function pump(
  h: Harness,
  handlers: Record<string, (message: Message) => Promise<unknown>>,
  options: {
    sagas?: Saga[];
    deliver?: (handle: () => Promise<unknown>, message: OutboxMessage) => Promise<unknown>;
  } = {},
): Promise<void> {
  const deliver = options.deliver ?? ((handle) => handle());
  for (let idle = 0, round = 0; idle < 3; round++) {
    if (round > 10_000) throw new Error('pump: still moving after 10 000 rounds');
    const { claimed } = await h.relay.runOnce();
    const batch = h.queue.splice(0);
    for (const message of batch) {
      const handler = handlers[message.topic];
      if (handler === undefined) throw new Error(`pump: no handler for topic ${message.topic}`);
      await deliver(() => handler(delivered(message)), message);
    }
    let swept = 0;
    for (const s of options.sagas ?? []) swept += await s.sweep(h.pool);
    if (claimed === 0 && batch.length === 0 && swept === 0) {
      idle += 1;
      await new Promise((resolve) => setTimeout(resolve, 10));
    } else idle = 0;
  }
}

/** Effects rows: `participant/phase/key`, sorted. */
export async function effects(h: Harness): Promise<string[]> {
  const { rows } = await h.pool.query(`SELECT participant, phase, key FROM ${h.tables.effects} ORDER BY seq`);
  return rows.map((r) => `${r.participant}/${r.phase}/${r.key}`);
}
