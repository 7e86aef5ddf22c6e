/** Markdown for the results: the speed table, correctness, memory, and the doc's marked sections. */
import type { Case } from './cases.ts';
import type { CorrectnessResult } from './correctness.ts';
import type { CaseSummary } from './stats.ts';

const PATH_LABEL = { bare: '—', first: 'first execution', replay: 'replay' } as const;

function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

/** One row per case, in the order of `cases`; cases with no summary (not run) say so. */
export function speedTable(cases: readonly Case[], summaries: readonly CaseSummary[]): string {
  const rows = [
    '| case | path | req/s | p50 ms | p99 ms | vs bare | server CPU µs / req | handler runs / req | errors / non-2xx |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const c of cases) {
    const s = summaries.find((x) => x.caseId === c.id);
    if (!s) {
      rows.push(`| ${c.label} | ${PATH_LABEL[c.path]} | not run | | | | | | |`);
      continue;
    }
    const ratio = c.group === 'baseline' ? '1.00' : fixed(s.ratio, 2);
    rows.push(
      `| ${c.label} | ${PATH_LABEL[c.path]} | ${Math.round(s.rps).toLocaleString('en-US')} | ${fixed(s.p50, 0)} | ${fixed(s.p99, 0)} | ${ratio} | ${fixed(s.cpuUsPerRequest, 0)} | ${fixed(s.executionsPerRequest, 2)} | ${s.errors} / ${s.non2xx} |`,
    );
  }
  return rows.join('\n');
}

export interface CorrectnessRow {
  label: string;
  result: CorrectnessResult | { error: string };
}

function counts(record: Record<string, number>): string {
  return Object.entries(record)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, n]) => `${status}×${n}`)
    .join(' ');
}

function spread(values: readonly number[]): string {
  const min = Math.min(...values);
  const max = Math.max(...values);
  return min === max ? String(min) : `${min}–${max}`;
}

export function correctnessTable(rows: readonly CorrectnessRow[]): string {
  const lines = [
    '| case | side effects per key | keys ≠ 1 | statuses of the 1 000 duplicates | retry after | effects after retry |',
    '|---|--:|--:|---|---|--:|',
  ];
  for (const row of rows) {
    if ('error' in row.result) {
      lines.push(`| ${row.label} | failed: ${row.result.error} | | | | |`);
      continue;
    }
    const r = row.result;
    const mismatch = r.retryBodyMismatches > 0 ? ` (${r.retryBodyMismatches} bodies differ)` : '';
    lines.push(
      `| ${row.label} | ${spread(r.effectsPerKey)} | ${r.wrongKeys} | ${counts(r.statuses)} | ${counts(r.retryStatuses)}${mismatch} | ${spread(r.effectsAfterRetry)} |`,
    );
  }
  return lines.join('\n');
}

export interface MemoryRow {
  label: string;
  requests: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  peakMiB: number | null;
  heapAfterMiB: number;
  /** Buffers and other memory outside the JS heap. */
  externalAfterMiB: number;
}

export function memoryTable(rows: readonly MemoryRow[]): string {
  const lines = [
    '| server | requests | RSS before (MiB) | RSS after, after GC (MiB) | peak RSS (MiB) | heap used after (MiB) | external after (MiB) |',
    '|---|--:|--:|--:|--:|--:|--:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.label} | ${r.requests.toLocaleString('en-US')} | ${fixed(r.rssBeforeMiB, 0)} | ${fixed(r.rssAfterMiB, 0)} | ${r.peakMiB === null ? 'n/a' : fixed(r.peakMiB, 0)} | ${fixed(r.heapAfterMiB, 0)} | ${fixed(r.externalAfterMiB, 0)} |`,
    );
  }
  return lines.join('\n');
}

/** Replace what lies between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`; the markers stay. */
export function replaceSection(doc: string, name: string, content: string): string {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  if (from < 0 || to < from) throw new Error(`docs/benchmarks.md has no ${start} … ${end} section`);
  return `${doc.slice(0, from + start.length)}\n${content}\n${doc.slice(to)}`;
}
