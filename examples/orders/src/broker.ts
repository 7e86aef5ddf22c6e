/**
 * The demo's broker, NATS JetStream or RabbitMQ behind one shape: a publisher for the outbox relays,
 * a subscription per participant, and the set-up and removal of the run's stream or exchange.
 */
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { nanos, connect as natsConnect } from '@nats-io/transport-node';
import { consumeJetStream, consumeRabbit, type Handle, type Subscription } from '@oncely/consumer';
import type { Publisher } from '@oncely/outbox';
import { jetStreamPublisher } from '@oncely/outbox/nats';
import { rabbitMqPublisher } from '@oncely/outbox/rabbitmq';
import amqp from 'amqplib';
import { type DemoConfig, PARTICIPANTS, topicOf } from './flow.ts';

export interface Broker {
  publisher: Publisher;
  /** Consume `owner`'s commands (or, for 'replies', the orchestrator's replies). */
  subscribe(owner: string, handle: Handle): Promise<Subscription>;
  close(): Promise<void>;
}

const OWNERS = [...PARTICIPANTS, 'replies'] as const;

export async function connectBroker(config: DemoConfig): Promise<Broker> {
  if (config.broker === 'nats') {
    const nc = await natsConnect({
      servers: config.brokerUrl,
      timeout: 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    const js = jetstream(nc);
    // As with RabbitMQ below: a lost connection ends the process and the supervisor restarts it. The
    // client would reconnect by itself, but a pull consumer's pending pulls can sit out their
    // expiry (30 s) before it asks again, which holds every saga waiting on this participant.
    void nc.closed().then(() => process.exit(70));
    void (async () => {
      for await (const status of nc.status()) if (status.type === 'disconnect') process.exit(70);
    })();
    return {
      publisher: jetStreamPublisher({ connection: nc }),
      subscribe: async (owner, handle) =>
        consumeJetStream({
          consumer: await js.consumers.get(config.prefix, owner),
          handle,
          retryDelayMs: 200,
        }),
      close: async () => {
        await nc.drain();
      },
    };
  }
  const connection = await amqp.connect(config.brokerUrl, { noDelay: true });
  connection.on('error', () => {});
  // A lost connection ends the process, and its supervisor (main.ts) starts a new one: simpler
  // and surer than resuming every channel and consumer, and exactly what a crash already proves safe.
  connection.on('close', () => process.exit(70));
  const channels: amqp.Channel[] = [];
  const publisher = rabbitMqPublisher({ connection, exchange: config.prefix });
  return {
    publisher,
    async subscribe(owner, handle) {
      const channel = await connection.createChannel();
      channel.on('error', () => {});
      channel.on('close', () => process.exit(70));
      await channel.prefetch(10);
      channels.push(channel);
      return consumeRabbit({ channel, queue: `${config.prefix}.${owner}`, handle, retryDelayMs: 200 });
    },
    async close() {
      await publisher.close().catch(() => {});
      await connection.close().catch(() => {});
    },
  };
}

/** Create the run's stream and durable consumers (or exchange and queues), straight to the broker. */
export async function setUpBroker(config: DemoConfig, directUrl: string): Promise<() => Promise<void>> {
  if (config.broker === 'nats') {
    const nc = await natsConnect({ servers: directUrl, timeout: 5000 });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: config.prefix,
      subjects: [`${config.prefix}.>`],
      duplicate_window: nanos(120_000),
    });
    for (const owner of OWNERS) {
      await jsm.consumers.add(config.prefix, {
        durable_name: owner,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(5_000),
        max_deliver: -1,
        filter_subject: topicOf(config.prefix, owner),
      });
    }
    return async () => {
      await jsm.streams.delete(config.prefix).catch(() => {});
      await nc.close();
    };
  }
  const connection = await amqp.connect(directUrl);
  const channel = await connection.createChannel();
  await channel.assertExchange(config.prefix, 'topic', { durable: false, autoDelete: false });
  for (const owner of OWNERS) {
    const queue = `${config.prefix}.${owner}`;
    await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await channel.bindQueue(queue, config.prefix, topicOf(config.prefix, owner));
  }
  return async () => {
    for (const owner of OWNERS) await channel.deleteQueue(`${config.prefix}.${owner}`).catch(() => {});
    await channel.deleteExchange(config.prefix).catch(() => {});
    await connection.close().catch(() => {});
  };
}
