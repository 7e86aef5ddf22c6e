/**
 * Which answers are worth sending again. A retry is only ever sent with the same key and body, so the
 * question is not "is it safe" but "can waiting change the answer".
 */
import { parseRetryAfter } from './retry-after.ts';

export type Verdict =
  /** Send again after `retryAfterMs` (from `Retry-After`) or, when the server named no time, after backoff. */
  | { retry: true; retryAfterMs: number | undefined }
  /** A definite answer: hand it to the caller. */
  | { retry: false };

const FINAL: Verdict = Object.freeze({ retry: false });

/**
 * 408 (the server gave up waiting for us), 425 (too early), 429 (rate limited) and every 5xx are
 * transient. 409 is the draft's answer to a request still in progress and is retried, except a
 * problem whose `code` names another conflict: `ERR_ONCELY_RESPONSE_NOT_STORED` says the operation ran
 * and its response is gone, so a retry would only get the same 409. Every other status, 400, 401, 403,
 * 404 and 422 included, is final: only a change to the request can change it.
 */
export async function classifyResponse(response: Response, now: number): Promise<Verdict> {
  const { status } = response;
  let retry = status === 408 || status === 425 || status === 429 || status >= 500;
  if (status === 409) {
    const code = await problemCode(response);
    retry = code === undefined || code === 'ERR_ONCELY_IN_PROGRESS';
  }
  if (!retry) return FINAL;
  return { retry: true, retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), now) };
}

/** The `code` member of a JSON problem body, read from a clone so the caller still gets the body. */
async function problemCode(response: Response): Promise<string | undefined> {
  if (!/[/+]json\b/i.test(response.headers.get('content-type') ?? '')) return undefined;
  try {
    const body: unknown = JSON.parse(await response.clone().text());
    const code = (body as { code?: unknown } | null)?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    // An unreadable body says nothing about the conflict: treat it as the uncoded (in-progress) 409.
    return undefined;
  }
}
