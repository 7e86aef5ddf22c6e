/**
 * The client's one error class. It cannot reuse `OncelyError` from `@oncely/core`: core imports
 * Node's crypto module, and this package must load in browsers.
 */

/** Where each code is explained; the anchor is the code in lower case. */
export const CLIENT_DOCS_URL = 'https://github.com/oncely/oncely/blob/main/docs/client.md';

/** Every stable code of {@link OncelyClientError}, with what it means for the caller. */
export const CLIENT_ERROR_CODES = Object.freeze({
  /** `createClient` got an unknown option or an invalid value. Thrown at construction. */
  ERR_ONCELY_CLIENT_INVALID_OPTION: 'Invalid client option',
  /** A key given to the client or a key helper is not a valid key (1..255 printable ASCII characters). */
  ERR_ONCELY_CLIENT_INVALID_KEY: 'Invalid idempotency key',
  /** No attempt got a response and no retry is left. The outcome is unknown: retry later with `error.key`. */
  ERR_ONCELY_CLIENT_RETRIES_EXHAUSTED: 'No response after the last retry',
  /** No attempt got a response before `deadlineMs`. The outcome is unknown: retry later with `error.key`. */
  ERR_ONCELY_CLIENT_DEADLINE_EXCEEDED: 'No response before the deadline',
} as const);

export type OncelyClientErrorCode = keyof typeof CLIENT_ERROR_CODES;

export interface OncelyClientErrorOptions {
  cause?: unknown;
  /** The idempotency key the request was sent with. */
  key?: string | undefined;
  /** How many times the request was sent. */
  attempts?: number;
}

/**
 * The error `@oncely/client` throws.
 *
 * It extends `TypeError` on purpose: `fetch` rejects with a `TypeError` when it gets no response, and
 * `request()` promises to be a drop-in `fetch`, so code that catches `TypeError` from `fetch` keeps
 * working. Tell the cases apart with `code`; the last network error is the `cause`.
 * @example
 * try { await client.request(url, init) } catch (error) {
 *   if (isOncelyClientError(error) && error.code === 'ERR_ONCELY_CLIENT_RETRIES_EXHAUSTED') saveForLater(error.key);
 * }
 */
export class OncelyClientError extends TypeError {
  override readonly name = 'OncelyClientError';
  readonly code: OncelyClientErrorCode;
  /** The key the request carried: reuse it to retry later, the operation may have run. */
  readonly key: string | undefined;
  /** How many times the request was sent (0 for errors raised before sending). */
  readonly attempts: number;

  constructor(code: OncelyClientErrorCode, message: string, options: OncelyClientErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.key = options.key;
    this.attempts = options.attempts ?? 0;
  }

  /** The documentation of this code. */
  get docsUrl(): string {
    return `${CLIENT_DOCS_URL}#${this.code.toLowerCase()}`;
  }
}

/** True for an {@link OncelyClientError}, also across duplicated copies of the package. */
export function isOncelyClientError(value: unknown): value is OncelyClientError {
  return (
    value instanceof OncelyClientError ||
    (value instanceof Error && value.name === 'OncelyClientError' && 'code' in value)
  );
}
