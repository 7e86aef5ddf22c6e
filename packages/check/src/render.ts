/**
 * The report for a terminal: one line per case, the totals, then each case's evidence and
 * references. `--json` prints the report object instead.
 */

import type { CaseResult, ExchangeEvidence, Report, Verdict } from './report.ts';

const LABEL: Readonly<Record<Verdict, string>> = {
  pass: 'PASS',
  warn: 'WARN',
  fail: 'FAIL',
  info: 'INFO',
  skip: 'SKIP',
};

/** At most this many requests of a case are listed; the rest are counted. */
const EXCHANGES_SHOWN = 8;

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function exchangeLine(e: ExchangeEvidence): string {
  const parts = [
    e.label.padEnd(20),
    (e.status === 0 ? '---' : String(e.status)).padStart(3),
    `${String(e.ms).padStart(5)} ms`,
    `${String(e.bodyBytes).padStart(5)} B`,
  ];
  if (e.replayed) parts.push('Idempotent-Replayed');
  if (e.key !== undefined) parts.push(`key ${e.key}`);
  if (e.error) parts.push(e.error);
  return parts.join('  ');
}

function caseDetails(result: CaseResult): string[] {
  const lines = [
    `${result.title}: ${LABEL[result.verdict]} (${seconds(result.ms)})`,
    `    ${result.summary}`,
  ];
  for (const detail of result.details) lines.push(`    ${detail}`);
  if (result.aggregate) {
    const { requests, statuses, replayed, ms } = result.aggregate;
    const counted = Object.entries(statuses)
      .map(([status, n]) => `${n}×${status}`)
      .join(', ');
    lines.push(
      `    ${requests} at once: ${counted}${replayed ? `, ${replayed} marked replayed` : ''}; ${ms.min}/${ms.median}/${ms.max} ms (min/median/max)`,
    );
  }
  if (result.executions) {
    lines.push(`    executions: ${result.executions.count} (by ${result.executions.by})`);
  }
  for (const e of result.exchanges.slice(0, EXCHANGES_SHOWN)) lines.push(`    ${exchangeLine(e)}`);
  if (result.exchanges.length > EXCHANGES_SHOWN) {
    lines.push(`    … ${result.exchanges.length - EXCHANGES_SHOWN} more requests (--json lists them)`);
  }
  for (const ref of result.references) lines.push(`    ref ${ref.name}: ${ref.says} <${ref.url}>`);
  return lines;
}

/**
 * The report as text: a table of verdicts, totals, then the details of each case.
 * @example
 * process.stdout.write(renderReport(await runCheck({ url })));
 */
export function renderReport(report: Report): string {
  const width = Math.max(...report.cases.map((c) => c.title.length));
  const counting =
    report.counting === 'count-url'
      ? 'executions counted by the count URL'
      : 'executions told by the responses (resource ids, Idempotent-Replayed); --count-url counts them';
  const { totals } = report;
  const lines = [
    `oncely check ${report.target.method} ${report.target.url}`,
    `${report.requests} requests in ${seconds(report.ms)}, keys ${report.keyPrefix}*, ${counting}`,
    '',
    ...report.cases.map((c) => `  ${LABEL[c.verdict]}  ${c.title.padEnd(width)}  ${c.summary}`),
    '',
    `${totals.pass} pass, ${totals.warn} warn, ${totals.fail} fail, ${totals.info} info, ${totals.skip} skip: ${report.ok ? 'no failures' : 'FAILED'}`,
    '',
    'Details',
  ];
  // A skipped case sent nothing: its line in the table says why.
  for (const result of report.cases) {
    if (result.verdict !== 'skip') lines.push('', ...caseDetails(result));
  }
  return `${lines.join('\n')}\n`;
}
