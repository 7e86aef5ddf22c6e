/**
 * The order flow: seven steps, one saga. The order row is written locally (compensatable: the order
 * is cancelled); the payment is authorised through the payments demo's fake provider with the
 * step's key forwarded (compensatable: the authorisation is voided); stock is the pivot (out of stock
 * turns the saga around; reserved, the order goes through); fulfilment, notification, loyalty points
 * and the shipping label only go forward (retried, never compensated).
 */
import { inbox } from '@oncely/consumer';
import { DAY } from '@oncely/core';
import { outbox } from '@oncely/outbox';
import { type Saga, type StepDefinition, saga } from '@oncely/saga';

export const PARTICIPANTS = [
  'payment',
  'stock',
  'fulfilment',
  'notification',
  'loyalty',
  'shipping',
] as const;
export type Participant = (typeof PARTICIPANTS)[number];

/** Everything a process of the demo needs to find the others: names of its own per run. */
export interface DemoConfig {
  prefix: string;
  broker: 'nats' | 'rabbitmq';
  databaseUrl: string;
  /** The broker URL each process connects to (through the fault proxy). */
  brokerUrl: string;
  providerDb: string;
  /** A command's wait for its reply (the stock pivot waits 6 times longer: see its step). */
  stepTimeoutMs: number;
}

export const tables = (prefix: string) => ({
  orders: `${prefix}_orders`,
  saga: `${prefix}_saga`,
  inbox: `${prefix}_inbox`,
  effects: `${prefix}_effects`,
  outbox: (owner: 'orchestrator' | Participant) => `${prefix}_${owner}_outbox`,
});

/** The broker subject / routing key of a participant (commands and compensations alike). */
export const topicOf = (prefix: string, owner: Participant | 'replies'): string => `${prefix}.${owner}`;

export function orderSaga(config: Pick<DemoConfig, 'prefix' | 'stepTimeoutMs'>): Saga {
  const t = tables(config.prefix);
  const send = (to: Participant) => ({
    command: (c: { data: unknown }) => ({
      topic: topicOf(config.prefix, to),
      type: `order.${to}`,
      payload: c.data as never,
    }),
  });
  const forward = (name: Participant): StepDefinition => ({ name, kind: 'retriable', action: send(name) });
  return saga({
    name: 'order',
    outbox: outbox({ table: t.outbox('orchestrator') }),
    inbox: inbox({ consumer: 'order-saga', retentionMs: 14 * DAY, table: t.inbox }),
    replyTopic: topicOf(config.prefix, 'replies'),
    table: t.saga,
    stepTimeoutMs: config.stepTimeoutMs,
    retryDelayMs: 200,
    maxRetryDelayMs: 2_000,
    maxAttempts: 50,
    steps: [
      {
        name: 'order',
        kind: 'compensatable',
        action: {
          local: async (tx, c) => {
            await tx.query(
              `INSERT INTO ${t.orders} (id, state) VALUES ($1, 'created') ON CONFLICT DO NOTHING`,
              [c.sagaId],
            );
            return undefined;
          },
        },
        compensation: {
          local: async (tx, c) => {
            await tx.query(`UPDATE ${t.orders} SET state = 'cancelled' WHERE id = $1`, [c.sagaId]);
            await tx.query(
              `INSERT INTO ${t.effects} (participant, key, phase) VALUES ('order', $1, 'compensation')`,
              [c.idempotencyKey],
            );
            return undefined;
          },
        },
      },
      { name: 'payment', kind: 'compensatable', action: send('payment'), compensation: send('payment') },
      // The pivot's timeout is long: a pivot that timed out but did run cannot be taken back, so
      // it is given up only when its participant is surely not coming back.
      { name: 'stock', kind: 'pivot', action: send('stock'), timeoutMs: config.stepTimeoutMs * 6 },
      forward('fulfilment'),
      forward('notification'),
      forward('loyalty'),
      forward('shipping'),
    ],
  });
}
