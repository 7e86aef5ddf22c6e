/** Pure arithmetic over repeated runs: medians and ratios to the bare baseline. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export interface RunSample {
  caseId: string;
  repeat: number;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  errors: number;
  non2xx: number;
  /** Handler executions during the measured window. */
  executions: number;
  /** Server-side CPU time (user + system, all its processes) per request, in µs: steadier than req/s on a shared machine. */
  cpuUsPerRequest: number;
}

export interface CaseSummary {
  caseId: string;
  runs: number;
  rps: number;
  p50: number;
  p99: number;
  /** Median over repeats of (this run's req/s ÷ its baseline's req/s in the same repeat). */
  ratio: number;
  errors: number;
  non2xx: number;
  /** Handler executions per request, all repeats together. */
  executionsPerRequest: number;
  /** Median server CPU µs per request. */
  cpuUsPerRequest: number;
}

/** Summarise each case over its repeats, dividing each repeat by the baseline of that same repeat. */
export function summarise(
  samples: readonly RunSample[],
  baselineOf: (caseId: string) => string,
): CaseSummary[] {
  const byCase = new Map<string, RunSample[]>();
  for (const s of samples) byCase.set(s.caseId, [...(byCase.get(s.caseId) ?? []), s]);
  const summaries: CaseSummary[] = [];
  for (const [caseId, runs] of byCase) {
    const baseline = byCase.get(baselineOf(caseId)) ?? [];
    const ratios = runs.flatMap((run) => {
      const base = baseline.find((b) => b.repeat === run.repeat);
      return base && base.rps > 0 ? [run.rps / base.rps] : [];
    });
    const requests = runs.reduce((n, r) => n + r.requests, 0);
    summaries.push({
      caseId,
      runs: runs.length,
      rps: median(runs.map((r) => r.rps)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      ratio: median(ratios),
      errors: runs.reduce((n, r) => n + r.errors, 0),
      non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
      cpuUsPerRequest: median(runs.map((r) => r.cpuUsPerRequest)),
      executionsPerRequest: requests > 0 ? runs.reduce((n, r) => n + r.executions, 0) / requests : 0,
    });
  }
  return summaries;
}

/** The run order of one repeat: forwards on even repeats, backwards on odd ones, so no case always runs on a warm or a tired machine. */
export function orderFor<T>(items: readonly T[], repeat: number): T[] {
  return repeat % 2 === 0 ? [...items] : [...items].reverse();
}
