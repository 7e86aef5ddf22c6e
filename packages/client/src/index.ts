/**
 * @oncely/client: a fetch for API consumers that makes retries safe. One `Idempotency-Key` per
 * logical operation, the same key and body on every retry, backoff with full jitter, `Retry-After`
 * honoured, a deadline, and the caller's `AbortSignal`. Runs wherever `fetch` and Web Crypto do
 * (browsers, Node, Deno, Bun, Workers): no Node built-in imports, no dependencies.
 */
export { childKey } from './child-key.ts';
export {
  type ClientProblem,
  type ClientResult,
  createClient,
  type OncelyClient,
  type PostOptions,
  type PostResult,
} from './client.ts';
export { deriveKey, type KeyPart } from './derive-key.ts';
export {
  CLIENT_ERROR_CODES,
  isOncelyClientError,
  OncelyClientError,
  type OncelyClientErrorCode,
} from './errors.ts';
export { isValidKey, type KeyFormat, MAX_KEY_LENGTH } from './key-header.ts';
export { CLIENT_DEFAULTS, type ClientOptions, type FetchFunction, type RetryInfo } from './options.ts';
export { parseRetryAfter } from './retry-after.ts';
