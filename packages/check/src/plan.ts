/**
 * What an audit will send, known before it sends anything: the cases that run, and a bound on the
 * requests and on the operations that may create something. `oncely check` prints it and asks
 * before it starts.
 */

import { type CheckOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import { MAX_POLLS } from './probe.ts';
import type { CaseId } from './report.ts';
import { otherBody, TENANT } from './template.ts';

export interface PlannedCase {
  id: CaseId;
  title: string;
  /** Not run, and why (nothing to run it with). */
  skip?: string;
  /** Requests when no key has to be waited for, and at most (every wait polled to its end). */
  requests: { typical: number; max: number };
}

export interface Plan {
  method: string;
  url: string;
  /** The one origin every request goes to. */
  origin: string;
  cases: PlannedCase[];
  requests: { typical: number; max: number };
  /** Operations that can create something on an API that honours keys (one per key, plus each request it may accept without a valid key). */
  operations: number;
  /** Header names sent with every request (values are never printed). */
  headers: string[];
}

/** The title of a case as the report shows it. */
export function caseTitle(id: CaseId, options: Pick<ResolvedOptions, 'concurrency'>): string {
  switch (id) {
    case 'replay':
      return 'retry, same key and body';
    case 'mismatch':
      return 'same key, another body';
    case 'concurrent':
      return `${options.concurrency} concurrent duplicates`;
    case 'missing-key':
      return 'no key';
    case 'long-key':
      return 'key of 256 characters';
    case 'non-ascii-key':
      return 'non-ASCII key';
    case 'two-keys':
      return 'two key header lines';
    case 'disconnect':
      return 'client disconnects mid-request';
    case 'failure':
      return 'failing first answer';
    case 'tenants':
      return 'same key, another tenant';
  }
}

/** Why a case cannot run with these options, if it cannot. */
export function skipReason(id: CaseId, options: ResolvedOptions): string | undefined {
  if (id === 'mismatch' && !otherBody(options.body, options.otherBody)) return 'no other payload';
  if (id === 'failure' && options.failBody === undefined) return 'no --fail-body';
  if (id === 'tenants' && !options.tenant?.value.includes(TENANT))
    return 'no --tenant-header with {{tenant}}';
  return undefined;
}

/** Requests (typical, max), count URL reads included, and operations of one case. */
function cost(
  id: CaseId,
  options: ResolvedOptions,
): { typical: number; max: number; counts: number; operations: number } {
  const n = options.concurrency;
  switch (id) {
    case 'replay':
      return { typical: 2, max: 1 + MAX_POLLS, counts: 2, operations: 1 };
    case 'mismatch':
      return { typical: 3, max: 3, counts: 3, operations: 1 };
    case 'concurrent':
      return { typical: n + 1, max: n + MAX_POLLS, counts: 3, operations: 1 };
    case 'missing-key':
    case 'long-key':
    case 'non-ascii-key':
    case 'two-keys':
      return { typical: 1, max: 1, counts: 0, operations: 1 };
    case 'disconnect':
      return { typical: 2, max: 1 + MAX_POLLS, counts: 2, operations: 1 };
    case 'failure':
      return { typical: 3, max: 1 + 2 * MAX_POLLS, counts: 2, operations: 1 };
    case 'tenants':
      return { typical: 2, max: 2, counts: 0, operations: 2 };
  }
}

/** The plan of an audit with these options; throws `CheckError` for invalid options, like `runCheck`. */
export function planCheck(options: CheckOptions): Plan {
  return planResolved(resolveOptions(options));
}

export function planResolved(options: ResolvedOptions): Plan {
  const counting = options.countUrl !== undefined;
  const cases: PlannedCase[] = [];
  let typical = counting ? 1 : 0;
  let max = typical;
  let operations = 0;
  for (const id of options.cases) {
    const title = caseTitle(id, options);
    const skip = skipReason(id, options);
    if (skip) {
      cases.push({ id, title, skip, requests: { typical: 0, max: 0 } });
      continue;
    }
    const c = cost(id, options);
    const counts = counting ? c.counts : 0;
    cases.push({ id, title, requests: { typical: c.typical + counts, max: c.max + counts } });
    typical += c.typical + counts;
    max += c.max + counts;
    operations += c.operations;
  }
  const headers = [
    ...options.headers.map(([name]) => name),
    ...(options.tenant ? [options.tenant.name] : []),
  ];
  return {
    method: options.method,
    url: options.url.href,
    origin: options.url.origin,
    cases,
    requests: { typical, max },
    operations,
    headers,
  };
}
