/**
 * `runCheck` options: one object, every default in {@link CHECK_DEFAULTS}, unknown options and bad
 * values refused before anything is sent. The audited URL's origin is the only one ever contacted.
 */

import { CheckError } from './errors.ts';
import type { CaseId, Verdict } from './report.ts';
import { TENANT } from './template.ts';

export interface ProgressEvent {
  /** `start` before a case sends its first request, `done` once it has its verdict. */
  phase: 'start' | 'done';
  case: CaseId;
  title: string;
  /** 1-based position of the case, and how many run. */
  index: number;
  total: number;
  verdict?: Verdict;
}

export interface CheckOptions {
  /** The endpoint to audit, e.g. `https://api.example.com/v1/payments`. Every request goes to its origin. */
  url: string;
  /** @default 'POST' */
  method?: string;
  /** The request body; `{{unique}}` becomes a value unique to each operation (each new key). @default '' */
  body?: string;
  /** The payload of "same key, another body". @default the body's first JSON number + 1, else another `{{unique}}` */
  otherBody?: string;
  /** A body the API answers with a 4xx or 5xx; runs the "failing first answer" case. @default none */
  failBody?: string;
  /** Sent on every request (authorization, content type): `[name, value]` pairs. @default [] */
  headers?: ReadonlyArray<readonly [string, string]>;
  /** @default 'Idempotency-Key' */
  keyHeader?: string;
  /** `token`: `abc`, as Stripe-style clients send it; `sf-string`: `"abc"`, the draft's form. @default 'token' */
  keyFormat?: 'token' | 'sf-string';
  /**
   * The header that names the tenant: `Name: value` with `{{tenant}}` in the value (a fresh test
   * tenant per run; the isolation case mints a second), or a bare `Name` (the value is the tenant).
   * @default none
   */
  tenantHeader?: string;
  /** Concurrent duplicates of one key. @default 50 */
  concurrency?: number;
  /** A URL of the same origin that answers how many resources exist (a number, a JSON array, `{count}`, `{data: [...]}`). @default none: count distinct resource ids */
  countUrl?: string;
  /** The JSON field (dotted path) that identifies the created resource. @default 'id' */
  idField?: string;
  /** Per request. @default 30000 */
  timeoutMs?: number;
  /** How long a key may stay in progress after its request was answered or abandoned. @default 10000 */
  waitMs?: number;
  /** When the disconnecting client goes away. @default half the first request's time */
  disconnectAfterMs?: number;
  /** Run only these cases. @default every case */
  cases?: readonly CaseId[];
  /** Called as cases start and finish. */
  onProgress?: (event: ProgressEvent) => void;
}

/** Every default of {@link CheckOptions}. */
export const CHECK_DEFAULTS = Object.freeze({
  method: 'POST',
  body: '',
  keyHeader: 'Idempotency-Key',
  keyFormat: 'token' as 'token' | 'sf-string',
  concurrency: 50,
  idField: 'id',
  timeoutMs: 30_000,
  waitMs: 10_000,
});

/** Every case, in the order they run. */
export const CASES: readonly CaseId[] = [
  'replay',
  'mismatch',
  'concurrent',
  'missing-key',
  'long-key',
  'non-ascii-key',
  'two-keys',
  'disconnect',
  'failure',
  'tenants',
];

const KNOWN = new Set<string>([
  'url',
  'method',
  'body',
  'otherBody',
  'failBody',
  'headers',
  'keyHeader',
  'keyFormat',
  'tenantHeader',
  'concurrency',
  'countUrl',
  'idField',
  'timeoutMs',
  'waitMs',
  'disconnectAfterMs',
  'cases',
  'onProgress',
]);

/** At most this many concurrent duplicates: an audit, not a load test. */
export const MAX_CONCURRENCY = 500;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers the auditor writes itself, or that could point a request elsewhere. */
const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te']);

export interface ResolvedOptions {
  url: URL;
  method: string;
  body: string;
  otherBody: string | undefined;
  failBody: string | undefined;
  headers: Array<[string, string]>;
  /** A content type was among the headers. */
  hasContentType: boolean;
  keyHeader: string;
  keyFormat: 'token' | 'sf-string';
  tenant: { name: string; value: string } | undefined;
  concurrency: number;
  countUrl: URL | undefined;
  idField: string;
  timeoutMs: number;
  waitMs: number;
  disconnectAfterMs: number | undefined;
  cases: readonly CaseId[];
  onProgress: ((event: ProgressEvent) => void) | undefined;
}

const invalid = (message: string): CheckError => new CheckError('ERR_ONCELY_CHECK_INVALID_OPTION', message);

function httpUrl(name: string, text: unknown): URL {
  if (typeof text !== 'string') throw invalid(`${name} must be a URL string`);
  let url: URL;
  try {
    url = new URL(text);
  } catch (error) {
    throw new CheckError('ERR_ONCELY_CHECK_INVALID_OPTION', `${name}: "${text}" is not a URL`, {
      cause: error,
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`${name}: only http and https URLs can be audited, not ${url.protocol}`);
  }
  if (url.username || url.password) throw invalid(`${name}: put credentials in a header, not in the URL`);
  url.hash = '';
  return url;
}

function count(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max}, not ${String(value)}`);
  }
  return value;
}

function headerLine(name: string, value: string, what: string): [string, string] {
  if (!TOKEN.test(name)) throw invalid(`${what}: "${name}" is not a header name`);
  if (/[\r\n\0]/.test(value)) throw invalid(`${what} ${name}: a header value cannot hold CR, LF or NUL`);
  return [name, value];
}

/** Check every option and fill in the defaults; throws {@link CheckError} before anything is sent. */
export function resolveOptions(options: CheckOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw invalid('runCheck needs an options object');
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) throw invalid(`unknown option "${name}"`);
  }
  const url = httpUrl('url', options.url);
  const method = (options.method ?? CHECK_DEFAULTS.method).toUpperCase();
  if (!TOKEN.test(method)) throw invalid(`method: "${method}" is not an HTTP method`);
  const keyHeader = options.keyHeader ?? CHECK_DEFAULTS.keyHeader;
  if (!TOKEN.test(keyHeader)) throw invalid(`keyHeader: "${keyHeader}" is not a header name`);
  const keyFormat = options.keyFormat ?? CHECK_DEFAULTS.keyFormat;
  if (keyFormat !== 'token' && keyFormat !== 'sf-string') {
    throw invalid(`keyFormat must be 'token' or 'sf-string', not ${String(keyFormat)}`);
  }
  for (const [name, value] of [
    ['body', options.body],
    ['otherBody', options.otherBody],
    ['failBody', options.failBody],
  ] as const) {
    if (value !== undefined && typeof value !== 'string') throw invalid(`${name} must be a string`);
  }

  const headers: Array<[string, string]> = [];
  for (const entry of options.headers ?? []) {
    if (
      !Array.isArray(entry) ||
      entry.length !== 2 ||
      typeof entry[0] !== 'string' ||
      typeof entry[1] !== 'string'
    ) {
      throw invalid('headers must be [name, value] pairs of strings');
    }
    const [name, value] = headerLine(entry[0], entry[1], 'header');
    const lower = name.toLowerCase();
    if (RESERVED.has(lower)) throw invalid(`header ${name}: the auditor writes it itself`);
    if (lower === keyHeader.toLowerCase()) throw invalid(`header ${name}: the auditor sends the key itself`);
    headers.push([name, value]);
  }

  let tenant: ResolvedOptions['tenant'];
  if (options.tenantHeader !== undefined) {
    if (typeof options.tenantHeader !== 'string') throw invalid('tenantHeader must be a string');
    const colon = options.tenantHeader.indexOf(':');
    const name = (colon < 0 ? options.tenantHeader : options.tenantHeader.slice(0, colon)).trim();
    const value = colon < 0 ? TENANT : options.tenantHeader.slice(colon + 1).trim();
    headerLine(name, value, 'tenantHeader');
    const lower = name.toLowerCase();
    if (RESERVED.has(lower) || lower === keyHeader.toLowerCase()) {
      throw invalid(`tenantHeader ${name}: not a header the tenant can be sent in`);
    }
    // The tenant header wins over a --header of the same name (the test tenant replaces the usual one).
    for (let i = headers.length - 1; i >= 0; i--)
      if (headers[i]![0].toLowerCase() === lower) headers.splice(i, 1);
    tenant = { name, value };
  }

  let countUrl: URL | undefined;
  if (options.countUrl !== undefined) {
    countUrl = httpUrl('countUrl', options.countUrl);
    if (countUrl.origin !== url.origin) {
      throw new CheckError(
        'ERR_ONCELY_CHECK_OTHER_ORIGIN',
        `the count URL ${countUrl.origin} is not on the audited origin ${url.origin}: the auditor sends requests to that origin only`,
      );
    }
  }

  const idField = options.idField ?? CHECK_DEFAULTS.idField;
  if (typeof idField !== 'string' || idField === '')
    throw invalid('idField must be a field name, e.g. "id" or "data.id"');

  const cases = options.cases ?? CASES;
  if (!Array.isArray(cases) || cases.length === 0) throw invalid('cases must list at least one case');
  for (const id of cases)
    if (!CASES.includes(id)) throw invalid(`unknown case "${id}"; cases are ${CASES.join(', ')}`);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw invalid('onProgress must be a function');
  }

  return {
    url,
    method,
    body: options.body ?? CHECK_DEFAULTS.body,
    otherBody: options.otherBody,
    failBody: options.failBody,
    headers,
    hasContentType: headers.some(([name]) => name.toLowerCase() === 'content-type'),
    keyHeader,
    keyFormat,
    tenant,
    concurrency: count('concurrency', options.concurrency ?? CHECK_DEFAULTS.concurrency, 2, MAX_CONCURRENCY),
    countUrl,
    idField,
    timeoutMs: count('timeoutMs', options.timeoutMs ?? CHECK_DEFAULTS.timeoutMs, 1, 600_000),
    waitMs: count('waitMs', options.waitMs ?? CHECK_DEFAULTS.waitMs, 0, 600_000),
    disconnectAfterMs:
      options.disconnectAfterMs === undefined
        ? undefined
        : count('disconnectAfterMs', options.disconnectAfterMs, 1, 600_000),
    // In the order they run, whatever the order given.
    cases: CASES.filter((id) => cases.includes(id)),
    onProgress: options.onProgress,
  };
}
