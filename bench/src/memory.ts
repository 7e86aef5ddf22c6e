/**
 * Memory of the in-process stores: the server's RSS after many distinct keys, and while one large
 * response is replayed many times.
 */
import { readFile } from 'node:fs/promises';
import type { Case } from './cases.ts';
import { complete, load } from './load.ts';
import type { MemoryRow } from './report.ts';
import { type TargetOptions, withTarget } from './target.ts';

const MiB = 1024 * 1024;
export const LARGE_BODY_BYTES = 512 * 1024;

export interface MemoryPlan {
  distinctKeys: number;
  largeReplays: number;
  connections: number;
}

function expressCase(store: 'memory' | 'sqlite' | undefined): Case {
  return {
    id: `memory-${store ?? 'bare'}`,
    group: store ? 'oncely' : 'baseline',
    framework: 'express',
    variant: store ? 'oncely' : 'bare',
    ...(store ? { store } : {}),
    path: store ? 'first' : 'bare',
    baseline: 'memory-bare',
    label: store ? `@oncely/express + ${store}` : 'express (bare)',
  };
}

/** Peak RSS so far (VmHWM), from Linux's /proc; null elsewhere. */
async function peakRss(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match ? (Number(match[1]) * 1024) / MiB : null;
  } catch {
    return null;
  }
}

export async function measureMemory(plan: MemoryPlan, options: TargetOptions): Promise<MemoryRow[]> {
  const rows: MemoryRow[] = [];
  for (const store of [undefined, 'memory', 'sqlite'] as const) {
    const c = expressCase(store);
    rows.push(
      await withTarget(c, options, async (target) => {
        const before = await target.handler.rss();
        let n = 0;
        await load({
          url: target.url,
          connections: plan.connections,
          amount: plan.distinctKeys,
          nextKey: () => `k-${target.tag}-${n++}`,
        });
        const after = await target.handler.rss();
        return {
          label: `${c.label}, ${plan.distinctKeys.toLocaleString('en-US')} distinct keys`,
          requests: plan.distinctKeys,
          rssBeforeMiB: before.rss / MiB,
          rssAfterMiB: after.rss / MiB,
          peakMiB: await peakRss(target.handler.pid),
          heapAfterMiB: after.heapUsed / MiB,
          externalAfterMiB: after.external / MiB,
        };
      }),
    );
  }
  for (const store of ['memory', 'sqlite'] as const) {
    const c = expressCase(store);
    rows.push(
      await withTarget(c, { ...options, bodyBytes: LARGE_BODY_BYTES }, async (target) => {
        const key = `k-${target.tag}-large`;
        await complete(target.url, [key], 1);
        const before = await target.handler.rss();
        await load({
          url: target.url,
          connections: plan.connections,
          amount: plan.largeReplays,
          nextKey: () => key,
        });
        const after = await target.handler.rss();
        return {
          label: `${c.label}, one 512 KiB response replayed ${plan.largeReplays.toLocaleString('en-US')} times`,
          requests: plan.largeReplays,
          rssBeforeMiB: before.rss / MiB,
          rssAfterMiB: after.rss / MiB,
          peakMiB: await peakRss(target.handler.pid),
          heapAfterMiB: after.heapUsed / MiB,
          externalAfterMiB: after.external / MiB,
        };
      }),
    );
  }
  return rows;
}
