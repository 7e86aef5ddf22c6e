/**
 * @oncely/check: audit any HTTP API's Idempotency-Key handling from the outside.
 * @example
 * import { renderReport, runCheck } from '@oncely/check';
 * const report = await runCheck({ url: 'http://127.0.0.1:3000/payments', body: '{"amount":1999}' });
 * process.stdout.write(renderReport(report));
 */

export { CHECK_FLAGS, type CheckFlag, type CheckIo, checkCommand, parseCheckArgs } from './cli.ts';
export { CHECK_DOCS_URL, CHECK_ERROR_CODES, CheckError, type CheckErrorCode } from './errors.ts';
export { CASES, CHECK_DEFAULTS, type CheckOptions, MAX_CONCURRENCY, type ProgressEvent } from './options.ts';
export { type Plan, type PlannedCase, planCheck } from './plan.ts';
export { REFERENCES, type Reference } from './references.ts';
export { renderReport } from './render.ts';
export type { CaseId, CaseResult, ExchangeEvidence, Executions, Report, Verdict } from './report.ts';
export { checkVersion, runCheck } from './run-check.ts';
