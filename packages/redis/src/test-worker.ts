/**
 * A child process for redis-multiprocess.test.ts: its own connections and its own engine on the
 * shared Redis. On `go` it waits at a gate (BLPOP on a list the parent pushes to), then runs `count`
 * concurrent `oncely.run` calls on one key, counting the executions of its work honestly.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createOncely, isOncelyError } from '@oncely/core';
import { redisStore } from './redis-store.ts';
import { connectIoredis } from './test-redis.ts';

/** Parent → worker. */
export interface GoMessage {
  type: 'go';
  key: string;
  count: number;
  /** The list the worker blocks on until the parent opens the gate. */
  gateKey: string;
  /** INCR'd inside the work: the side effect, counted by Redis itself. */
  counterKey: string;
  /** How long the work holds the key once it runs. */
  holdMs: number;
}

/** What one `run` call ended with. */
export interface RunOutcome {
  outcome: 'executed' | 'replayed' | 'conflict' | 'error';
  /** The value `run` returned (executed or replayed). */
  value?: { worker: number; counter: number };
  /** The OncelyError code or message of a rejected call. */
  error?: string;
  /** Wall-clock ms when the call started and when it settled. */
  start: number;
  end: number;
}

/** Worker → parent. */
export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | {
      type: 'done';
      pid: number;
      /** How many times this process ran the work. */
      executions: number;
      /** Wall-clock ms when this process's work started and ended (when it ran). */
      work?: { start: number; end: number };
      outcomes: RunOutcome[];
    }
  | { type: 'error'; message: string };

// timeOrigin + now() is wall-clock time with sub-millisecond resolution, comparable across processes.
const wallClock = (): number => performance.timeOrigin + performance.now();

const send = (message: WorkerMessage): Promise<void> =>
  new Promise((resolve, reject) => {
    process.send!(message, undefined, {}, (error) => (error ? reject(error) : resolve()));
  });

async function main(prefix: string | undefined, worker: number): Promise<void> {
  if (prefix === undefined || Number.isNaN(worker))
    throw new Error('usage: test-worker.ts <prefix> <worker>');
  const redis = await connectIoredis();
  const gate = await connectIoredis(); // BLPOP blocks its connection: a second one for the gate
  const oncely = createOncely({ store: redisStore({ client: redis, prefix }) });
  const go = await new Promise<GoMessage>((resolve) => {
    process.once('message', (message) => resolve(message as GoMessage));
    void send({ type: 'ready', pid: process.pid });
  });

  await gate.blpop(go.gateKey, 10);
  let executions = 0;
  let work: { start: number; end: number } | undefined;
  const calls = Array.from({ length: go.count }, async (): Promise<RunOutcome> => {
    const start = wallClock();
    let ran = false;
    try {
      const value = await oncely.run({ scope: 'multiprocess', key: go.key }, async () => {
        ran = true;
        executions++;
        const began = wallClock();
        const counter = await redis.incr(go.counterKey);
        await sleep(go.holdMs);
        work = { start: began, end: wallClock() };
        return { worker, counter };
      });
      return { outcome: ran ? 'executed' : 'replayed', value, start, end: wallClock() };
    } catch (error) {
      const code = isOncelyError(error) ? error.code : String(error);
      return {
        outcome: code === 'ERR_ONCELY_IN_PROGRESS' ? 'conflict' : 'error',
        error: code,
        start,
        end: wallClock(),
      };
    }
  });
  const outcomes = await Promise.all(calls);
  redis.disconnect();
  gate.disconnect();
  await send({ type: 'done', pid: process.pid, executions, ...(work ? { work } : {}), outcomes });
}

const [prefix, worker] = process.argv.slice(2);
main(prefix, Number(worker))
  .catch((error: unknown) =>
    send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  )
  .finally(() => process.disconnect());
