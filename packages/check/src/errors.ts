/**
 * The auditor's one error class. It is not `OncelyError` from `@oncely/core`: this package audits
 * any API from the outside and depends on no other Oncely package.
 */

/** Where each code is explained; the anchor is the code in lower case. */
export const CHECK_DOCS_URL = 'https://github.com/oncely/oncely/blob/main/docs/check.md';

/** Every stable code of {@link CheckError}. */
export const CHECK_ERROR_CODES = Object.freeze({
  /** `runCheck` got an unknown option or an invalid value; nothing was sent. */
  ERR_ONCELY_CHECK_INVALID_OPTION: 'Invalid check option',
  /** A URL other than the audited one's origin was given (the count URL); nothing was sent. */
  ERR_ONCELY_CHECK_OTHER_ORIGIN: 'Another origin than the audited URL',
  /** The count URL did not answer a count before the audit started; nothing else was sent. */
  ERR_ONCELY_CHECK_COUNT_UNREADABLE: 'The count URL answered no count',
} as const);

export type CheckErrorCode = keyof typeof CHECK_ERROR_CODES;

/**
 * What `runCheck` throws when it cannot start. A finding about the audited API is never an error:
 * it is a verdict in the report.
 * @example
 * try { await runCheck({ url }) } catch (error) { if (error instanceof CheckError) console.error(error.code) }
 */
export class CheckError extends Error {
  override readonly name = 'CheckError';
  readonly code: CheckErrorCode;

  constructor(code: CheckErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** The documentation of this code. */
  get docsUrl(): string {
    return `${CHECK_DOCS_URL}#${this.code.toLowerCase()}`;
  }
}
