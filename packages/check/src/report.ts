/**
 * The report `runCheck` resolves with: one result per case, each with its verdict, the evidence it
 * rests on and the references that say what an API should do. Plain data: `JSON.stringify` it.
 */

import { escapeBytes, marked, sha256 } from './compare.ts';
import type { Exchange } from './exchange.ts';
import type { Reference } from './references.ts';

/**
 * `fail`: a duplicate side effect, a replay of another payload, a stuck key, a replay that is not the
 * first response. `warn`: works, but not as the draft or Stripe do it, or could not be told.
 * `info`: a legitimate choice worth knowing. `skip`: not run (not asked for, or nothing to run on).
 */
export type Verdict = 'pass' | 'warn' | 'fail' | 'info' | 'skip';

/** Worst first: the order a case's findings are folded in, and the report sorted by. */
export const VERDICTS: readonly Verdict[] = ['fail', 'warn', 'info', 'pass', 'skip'];

/** The worse of two verdicts. */
export const worse = (a: Verdict, b: Verdict): Verdict =>
  VERDICTS.indexOf(a) <= VERDICTS.indexOf(b) ? a : b;

export type CaseId =
  | 'replay'
  | 'mismatch'
  | 'concurrent'
  | 'missing-key'
  | 'long-key'
  | 'non-ascii-key'
  | 'two-keys'
  | 'disconnect'
  | 'failure'
  | 'tenants';

/** One request as the report shows it. */
export interface ExchangeEvidence {
  label: string;
  /** The key header's value as sent (absent: no key). */
  key?: string;
  /** 0: no response (`error` says why). */
  status: number;
  ms: number;
  /** The response carried `Idempotent-Replayed: true`. */
  replayed: boolean;
  bodyBytes: number;
  bodySha256: string;
  /** The first 512 body bytes, printable ASCII as is, other bytes as \xNN. */
  body: string;
  /** Response header lines, `set-cookie` values hidden. */
  headers?: Array<[string, string]>;
  error?: string;
}

export interface Executions {
  /** How many times the operation ran, as far as the auditor can tell. */
  count: number;
  /** `count-url`: the count URL's number went up by `count`; `resource ids`: distinct ids in the answers. */
  by: 'count-url' | 'resource ids' | 'locations' | 'response bodies';
}

export interface CaseResult {
  id: CaseId;
  title: string;
  verdict: Verdict;
  /** One line: what happened. */
  summary: string;
  /** Further findings, one sentence each: what differed, why it matters. */
  details: string[];
  exchanges: ExchangeEvidence[];
  /** For many alike requests (the concurrent duplicates): statuses and times in one line. */
  aggregate?: {
    requests: number;
    statuses: Record<string, number>;
    replayed: number;
    ms: { min: number; median: number; max: number };
  };
  executions?: Executions;
  references: Reference[];
  ms: number;
}

export interface Report {
  tool: '@oncely/check';
  version: string;
  target: { method: string; url: string };
  /** The keys of this run all start with this (`oncely-check-<run>-`): find them in your logs. */
  keyPrefix: string;
  startedAt: string;
  ms: number;
  /** Requests sent, count URL reads included. */
  requests: number;
  /** How executions were counted: the count URL, or distinct resources in the answers. */
  counting: 'count-url' | 'responses';
  totals: Record<Verdict, number>;
  /** True when no case failed: the exit code of `oncely check` is 0. */
  ok: boolean;
  cases: CaseResult[];
}

const PREVIEW_BYTES = 512;

/** An exchange as evidence; `withHeaders` adds the response header lines. */
export function evidence(exchange: Exchange, withHeaders = false): ExchangeEvidence {
  const out: ExchangeEvidence = {
    label: exchange.label,
    ...(exchange.key === undefined ? {} : { key: exchange.key }),
    status: exchange.status,
    ms: Math.round(exchange.ms),
    replayed: marked(exchange),
    bodyBytes: exchange.body.byteLength,
    bodySha256: sha256(exchange.body),
    body: `${escapeBytes(exchange.body.subarray(0, PREVIEW_BYTES))}${exchange.body.byteLength > PREVIEW_BYTES ? '…' : ''}`,
  };
  if (withHeaders) {
    out.headers = exchange.headers.map(([name, value]) => [
      name,
      name === 'set-cookie' ? `(hidden, ${value.length} characters)` : value,
    ]);
  }
  if (exchange.error) out.error = exchange.error;
  return out;
}

/** Statuses, replay markers and times of many alike requests. */
export function aggregate(exchanges: readonly Exchange[]): NonNullable<CaseResult['aggregate']> {
  const statuses: Record<string, number> = {};
  for (const exchange of exchanges) {
    const name = exchange.status === 0 ? 'no response' : String(exchange.status);
    statuses[name] = (statuses[name] ?? 0) + 1;
  }
  const times = exchanges.map((e) => Math.round(e.ms)).sort((a, b) => a - b);
  return {
    requests: exchanges.length,
    statuses,
    replayed: exchanges.filter(marked).length,
    ms: { min: times[0] ?? 0, median: times[Math.floor(times.length / 2)] ?? 0, max: times.at(-1) ?? 0 },
  };
}
