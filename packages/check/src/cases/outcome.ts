/** What every case returns, and the small phrases the cases share. */

import type { Exchange } from '../exchange.ts';
import type { Probe } from '../probe.ts';
import { type CaseResult, VERDICTS, type Verdict, worse } from '../report.ts';

/** A case's result before the runner adds its id, title and time. */
export type CaseOutcome = Omit<CaseResult, 'id' | 'title' | 'ms' | 'details' | 'exchanges'> & {
  details?: string[];
  exchanges?: CaseResult['exchanges'];
};

/** What a case learnt that a later one needs. */
export interface RunState {
  /** The first successful response of the run (the replay case's first request). */
  first?: Exchange;
  /** The retry of that first request was a replay (false: the API does not replay at all). */
  replays?: boolean;
}

export type CaseRun = (probe: Probe, state: RunState) => Promise<CaseOutcome>;

/** `201`, or `no response (timeout after 30000 ms)`. */
export const status = (exchange: Exchange): string =>
  exchange.status === 0 ? `no response (${exchange.error ?? 'closed'})` : String(exchange.status);

/** `409 ×3, then 201` for the answers to a waited-for key. */
export function sequence(exchanges: readonly Exchange[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < exchanges.length) {
    let j = i;
    while (j + 1 < exchanges.length && exchanges[j + 1]!.status === exchanges[i]!.status) j++;
    const n = j - i + 1;
    parts.push(n > 1 ? `${status(exchanges[i]!)} ×${n}` : status(exchanges[i]!));
    i = j + 1;
  }
  return parts.join(', then ');
}

/** The count URL's increase over a case, when both reads answered. */
export const delta = (before: number | undefined, after: number | undefined): number | undefined =>
  before === undefined || after === undefined ? undefined : after - before;

/** The case was not run: why, and what would run it. */
export const skipped = (summary: string, references: CaseOutcome['references'] = []): CaseOutcome => ({
  verdict: 'skip',
  summary,
  references,
});

/**
 * A case's findings, folded into one verdict: the summary is the worst finding (or the pass line),
 * the details are the rest, worst first, then the notes.
 */
export class Findings {
  readonly #found: Array<{ verdict: Verdict; text: string }> = [];
  readonly #notes: string[] = [];

  add(verdict: Verdict, text: string): void {
    this.#found.push({ verdict, text });
  }

  /** A fact that does not change the verdict. */
  note(text: string): void {
    this.#notes.push(text);
  }

  get verdict(): Verdict {
    return this.#found.reduce<Verdict>((verdict, found) => worse(verdict, found.verdict), 'pass');
  }

  result(passSummary: string): { verdict: Verdict; summary: string; details: string[] } {
    const sorted = [...this.#found].sort((a, b) => VERDICTS.indexOf(a.verdict) - VERDICTS.indexOf(b.verdict));
    const [head, ...rest] = sorted;
    if (!head || head.verdict === 'pass') {
      return {
        verdict: 'pass',
        summary: passSummary,
        details: [...sorted.map((f) => f.text), ...this.#notes],
      };
    }
    return {
      verdict: head.verdict,
      summary: head.text,
      details: [...rest.map((f) => `${f.verdict}: ${f.text}`), ...this.#notes],
    };
  }
}
