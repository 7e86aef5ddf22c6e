/**
 * One error class with a stable `code`. The HTTP problems (RFC 9457) use the titles of the IETF
 * draft "The Idempotency-Key HTTP Header Field" where it has them; `docs/errors.md` documents every
 * code, and `errors.test.ts` keeps that page, this table and the exported union in sync.
 */

/** Where every `type` URI and docs anchor points. */
export const DOCS_URL = 'https://github.com/oncely/oncely/blob/main/docs/errors.md';

const CODES = {
  ERR_ONCELY_KEY_MISSING: { status: 400, title: 'Idempotency-Key is missing' },
  ERR_ONCELY_KEY_INVALID: { status: 400, title: 'Idempotency-Key is invalid' },
  ERR_ONCELY_KEY_REUSED: { status: 422, title: 'Idempotency-Key is already used' },
  ERR_ONCELY_IN_PROGRESS: { status: 409, title: 'A request is outstanding for this Idempotency-Key' },
  ERR_ONCELY_RESPONSE_NOT_STORED: { status: 409, title: 'The original response was too large to store' },
  ERR_ONCELY_STORE_UNAVAILABLE: { status: 503, title: 'Idempotency store unavailable' },
  ERR_ONCELY_BODY_AMBIGUOUS: { status: 400, title: 'Request body is ambiguous' },
  ERR_ONCELY_SCOPE_MISSING: { status: 400, title: 'Request scope is missing' },
  ERR_ONCELY_LEASE_LOST: { status: 500, title: 'The lease on this Idempotency-Key was lost' },
  ERR_ONCELY_EXECUTION_TIMEOUT: { status: 500, title: 'The request ran past its time bound' },
  ERR_ONCELY_INVALID_OPTION: { status: 500, title: 'Invalid Oncely option' },
  // Sent by the gateway, which buffers requests and calls an upstream; listed here so that every
  // package's codes live in one registry, kept in sync with docs/errors.md by one test.
  ERR_ONCELY_BODY_TOO_LARGE: { status: 413, title: 'Request body too large' },
  ERR_ONCELY_UPSTREAM_UNAVAILABLE: { status: 502, title: 'Upstream unavailable' },
  ERR_ONCELY_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timed out' },
} as const satisfies Record<string, { status: number; title: string }>;

/** Every stable error code. */
export type OncelyErrorCode = keyof typeof CODES;

/** The code table: status and title per code (read-only). */
export const ERROR_CODES: Readonly<
  Record<OncelyErrorCode, { readonly status: number; readonly title: string }>
> = CODES;

/** An RFC 9457 problem details object, as sent with `Content-Type: application/problem+json`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: OncelyErrorCode;
}

export interface OncelyErrorOptions {
  cause?: unknown;
  /** Seconds a client should wait before retrying (sent as `Retry-After` on 409 and 503). */
  retryAfter?: number;
}

/**
 * The one error type of Oncely.
 * @example
 * if (decision.kind === 'reject') reply.code(decision.error.status).send(decision.error.toProblem());
 */
export class OncelyError extends Error {
  override readonly name = 'OncelyError';
  readonly code: OncelyErrorCode;
  readonly status: number;
  readonly title: string;
  readonly retryAfter: number | undefined;

  constructor(code: OncelyErrorCode, detail: string, options: OncelyErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = CODES[code].status;
    this.title = CODES[code].title;
    this.retryAfter = options.retryAfter;
  }

  /** The docs anchor for this code; also the problem's `type`. */
  get docsUrl(): string {
    return problemType(this.code);
  }

  /** The RFC 9457 body. Never includes the key, the body or the cause: those may be secret. */
  toProblem(): Problem {
    return {
      type: this.docsUrl,
      title: this.title,
      status: this.status,
      detail: this.message,
      code: this.code,
    };
  }
}

/** The problem `type` URI of a code: distinct per code, and a working link to its documentation. */
export function problemType(code: OncelyErrorCode): string {
  return `${DOCS_URL}#${code.toLowerCase()}`;
}

/** True for any value that is an OncelyError (also across duplicated package copies). */
export function isOncelyError(value: unknown): value is OncelyError {
  return (
    value instanceof OncelyError ||
    (value instanceof Error && value.name === 'OncelyError' && 'code' in value)
  );
}
