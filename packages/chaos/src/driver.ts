/**
 * The clients of a chaos run. Each key is one logical operation, retried until it succeeds: duplicate
 * bursts of the same key to both server processes at once, single attempts whose AbortSignal fires
 * after 20–300 ms (the client gives up and retries), plain sequential retries after a 409 or a
 * connection the chaos loop cut, and, once a success came back, a replay or two from either server.
 * Every attempt is recorded; the driver decides nothing about correctness (checks.ts does).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { between, pick, type Random } from './random.ts';
import type { RunningServer, ServerSlot } from './server-process.ts';
import { type Attempt, now } from './timeline.ts';
import { PID_HEADER } from './upstream.ts';

export interface DriverOptions {
  /** The two server roles; every burst reaches both. */
  slots: readonly ServerSlot[];
  random: Random;
  /** Key names start with this (unique per run). */
  keyPrefix: string;
  /** At most this many keys. */
  maxKeys: number;
  /** Keys in flight at once. */
  concurrency: number;
  /** No new key starts after this time (`now()` time base). */
  until: number;
  /** A key that has not succeeded this long after its first attempt is given up (a finding). */
  keyDeadlineMs: number;
  attempts: Attempt[];
  /** Attempts in flight per server pid, kept up to date here (the chaos loop aims at busy processes). */
  inFlight?: Map<number, number>;
  /** Aborted when the run failed: no new key, no further retry. */
  signal?: AbortSignal;
}

/** A request that is not cut short by the client gets this long (a bound, never reached when all is well). */
const PATIENT_MS = 5_000;

interface Plan {
  slot: ServerSlot;
  timeoutMs: number;
}

/** Run the traffic; resolves with every key started, once each has succeeded or passed its deadline. */
export async function drive(options: DriverOptions): Promise<string[]> {
  const { random, slots } = options;
  const keys: string[] = [];
  const impatient = (): number => (random() < 0.4 ? between(random, 20, 300) : PATIENT_MS);

  /** Where a single attempt goes: the chosen role, or the other one while the chosen one restarts. */
  const target = async (slot: ServerSlot): Promise<RunningServer> => {
    const up = slot.current();
    if (up) return up;
    const other = slots.find((s) => s !== slot && s.current());
    return other?.current() ?? slot.next();
  };

  const attempt = async (key: string, body: string, plan: Plan, follow: boolean): Promise<Attempt> => {
    const server = follow ? await target(plan.slot) : await plan.slot.next();
    const signal = AbortSignal.timeout(plan.timeoutMs);
    const sentAt = now();
    const base = { key, role: server.role, pid: server.pid, sentAt, timeoutMs: plan.timeoutMs };
    let record: Attempt;
    const busy = options.inFlight;
    busy?.set(server.pid, (busy.get(server.pid) ?? 0) + 1);
    try {
      const response = await fetch(`${server.url}/pay`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': key,
          [PID_HEADER]: String(server.pid),
        },
        body,
        signal,
      });
      const bytes = Buffer.from(await response.arrayBuffer());
      record = {
        ...base,
        endedAt: now(),
        outcome: 'response',
        status: response.status,
        body: bytes,
        replayed: response.headers.get('idempotent-replayed') === 'true',
      };
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
      record = {
        ...base,
        endedAt: now(),
        outcome: signal.aborted ? 'timeout' : 'error',
        error: `${error instanceof Error ? error.message : String(error)}${cause}`,
      };
    } finally {
      busy?.set(server.pid, busy.get(server.pid)! - 1);
    }
    options.attempts.push(record);
    return record;
  };

  const ok = (a: Attempt): boolean => a.outcome === 'response' && a.status! >= 200 && a.status! < 300;

  const runKey = async (index: number): Promise<void> => {
    const key = `${options.keyPrefix}-${index}`;
    keys.push(key);
    const body = JSON.stringify({ key, amount: 100 + index });
    const deadline = now() + options.keyDeadlineMs;
    let succeeded = false;
    while (!succeeded && now() < deadline && !options.signal?.aborted) {
      let results: Attempt[];
      if (random() < 0.35) {
        // A duplicate burst: the same key at both servers at once, and maybe more copies.
        const plans = slots.map((slot) => ({ slot, timeoutMs: impatient() }));
        for (let extra = between(random, 0, 2); extra > 0; extra--) {
          plans.push({ slot: pick(random, slots), timeoutMs: impatient() });
        }
        results = await Promise.all(plans.map((plan) => attempt(key, body, plan, false)));
      } else {
        results = [await attempt(key, body, { slot: pick(random, slots), timeoutMs: impatient() }, true)];
      }
      succeeded = results.some(ok);
      if (!succeeded) await sleep(between(random, 20, 200));
    }
    if (!succeeded) return;
    // A client that retries after all (its success was lost on the way): the replay must be the same.
    for (let replays = between(random, 1, 2); replays > 0; replays--) {
      await attempt(key, body, { slot: pick(random, slots), timeoutMs: PATIENT_MS }, true);
    }
  };

  // Keys are spread over the whole window, so a small count still meets every kill of the chaos loop
  // (a long run's count is a bound that the time limit reaches first).
  const started = now();
  const paceMs = Math.max(0, options.until - started) / options.maxKeys;
  let nextIndex = 0;
  const worker = async (): Promise<void> => {
    while (nextIndex < options.maxKeys && now() < options.until && !options.signal?.aborted) {
      const index = nextIndex++;
      const due = started + index * paceMs - now();
      if (due > 0) await sleep(due);
      await runKey(index);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return keys;
}
