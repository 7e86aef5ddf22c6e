/**
 * A child process for engine-multiprocess.test.ts: handles one message in engine mode on a
 * PostgreSQL store shared with the other processes, the effect being a charge at the parent's fake
 * payment provider. Starts the handling at `startAt` (so that several children overlap), prints
 * `outcome <json>` and exits.
 */
import { writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createOncely } from '@oncely/core';
import { postgresStore } from '@oncely/postgres';
import pg from 'pg';
import { engineInbox, type Message } from './index.ts';
import { DATABASE_URL } from './test-services.ts';

/** Parent → worker, as JSON in argv[2]. */
export interface EngineWorkerConfig {
  table: string;
  namespace: string;
  consumer: string;
  pspUrl: string;
  message: Pick<Message, 'id' | 'type' | 'payload'>;
  startAt: number;
}

const say = (line: string): void => {
  writeSync(1, `${line}\n`);
};

async function main(config: EngineWorkerConfig): Promise<void> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 3 });
  const store = postgresStore({ pool, table: config.table, namespace: config.namespace, sweepIntervalMs: 0 });
  const oncely = createOncely({ store, leaseMs: 5000 });
  const charges = engineInbox({ oncely, consumer: config.consumer });
  const message: Message = { ...config.message, key: undefined, headers: {}, raw: undefined };
  await sleep(Math.max(0, config.startAt - Date.now()));
  const outcome = await charges.handle(message, async (m) => {
    const response = await fetch(`${config.pspUrl}/charges`, {
      method: 'POST',
      // The message id goes on as the provider's idempotency key: what closes the engine's gap of a
      // crash between the charge and the record. The fake provider counts calls regardless.
      headers: { 'content-type': 'application/json', 'idempotency-key': m.id },
      body: JSON.stringify(m.payload),
    });
    return (await response.json()) as { charge: string };
  });
  say(
    `outcome ${JSON.stringify({ status: outcome.status, ...('value' in outcome ? { value: outcome.value } : {}) })}`,
  );
  await store.close();
  await pool.end();
}

main(JSON.parse(process.argv[2] ?? '{}') as EngineWorkerConfig).catch((error: unknown) => {
  say(`error ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
