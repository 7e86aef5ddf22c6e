/**
 * The retrying fetch. One logical call is one key: generated once (or taken from the caller), sent
 * with the same body bytes on every attempt, until the server gives a definite answer, the retries
 * run out, the deadline passes, or the caller aborts.
 */
import { backoffDelay } from './backoff.ts';
import { OncelyClientError } from './errors.ts';
import { assertValidKey, formatKey, readKey } from './key-header.ts';
import { type ClientOptions, type ResolvedClientOptions, resolveClientOptions } from './options.ts';
import { classifyResponse, type Verdict } from './retry-decision.ts';
import { untilAborted } from './sleep.ts';

/** What `send` resolves to: the final response and how it was obtained. */
export interface ClientResult {
  /** The final response, exactly as `fetch` returned it; its body is unread. */
  response: Response;
  /** True when the server answered with a stored response (`Idempotent-Replayed: true`): the operation ran earlier. */
  replayed: boolean;
  /** How many times the request was sent (1 when the first attempt was final). */
  attempts: number;
  /** The idempotency key sent on every attempt, or `undefined` for a request without one. */
  key: string | undefined;
}

/** An RFC 9457 problem body, as Oncely servers (and many others) send with 4xx and 5xx. */
export interface ClientProblem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  /** Oncely's stable code, e.g. `ERR_ONCELY_KEY_REUSED` (see docs/errors.md). */
  code?: string;
  [member: string]: unknown;
}

/** Options of the `post` helper. */
export interface PostOptions {
  /** The idempotency key of this operation (e.g. from `deriveKey`); generated when absent. */
  key?: string;
  headers?: RequestInit['headers'];
  signal?: AbortSignal;
}

/** What `post` resolves to. The response body has been read into `data`. */
export type PostResult<T> = ClientResult &
  (
    | {
        ok: true;
        status: number;
        /** The parsed JSON body; `undefined` when it is empty or not JSON. */
        data: T;
        problem: undefined;
      }
    | {
        ok: false;
        status: number;
        /** The parsed JSON body, if any. */
        data: unknown;
        /** The body when it is `application/problem+json`; its `code` says what happened. */
        problem: ClientProblem | undefined;
      }
  );

/** A client made by `createClient`. Its functions do not use `this`: pass them around freely. */
export interface OncelyClient {
  /**
   * A drop-in `fetch`: same arguments, resolves to the final `Response` as `fetch` returned it, rejects
   * with the caller's abort reason, or with an `OncelyClientError` (a `TypeError`, like fetch's network
   * errors) when no attempt got a response.
   */
  request(input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** Like `request`, resolving to the response together with `replayed`, `attempts` and `key`. */
  send(input: string | URL | Request, init?: RequestInit): Promise<ClientResult>;
  /** POST `body` as JSON and read the JSON answer. */
  post<T = unknown>(url: string | URL, body: unknown, options?: PostOptions): Promise<PostResult<T>>;
}

/** Methods that are idempotent by definition (RFC 9110 §9.2.2): retried even without a key. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

type Outcome = { response: Response; verdict: Verdict } | { response?: undefined; error: unknown };

/**
 * A fetch that makes retries safe: one `Idempotency-Key` per logical call, the same on every retry.
 * @example
 * const client = createClient({ retries: 5, timeoutMs: 10_000 });
 * const { data, replayed } = await client.post<Payment>('https://api.example.com/payments', order, {
 *   key: await deriveKey('order', order.id, 'pay', 1),
 * });
 */
export function createClient(options?: ClientOptions): OncelyClient {
  const opts = resolveClientOptions(options);

  async function send(input: string | URL | Request, init?: RequestInit): Promise<ClientResult> {
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined) ?? undefined;
    if (signal?.aborted) throw signal.reason;
    const deadlineAt = opts.clock() + opts.deadlineMs;
    // The platform normalises the request once: URL, method, headers, and the body with the
    // Content-Type it implies (a FormData boundary included). It throws what fetch would throw.
    const prepared = new Request(input, init);
    const method = prepared.method;
    const headers = new Headers(prepared.headers);
    let key: string | undefined;
    const callerKey = headers.get(opts.keyHeader);
    if (callerKey !== null) {
      // The caller's key is theirs to manage: never replaced, never reformatted.
      key = readKey(callerKey);
    } else if (opts.methods.has(method.toUpperCase())) {
      key = crypto.randomUUID();
      headers.set(opts.keyHeader, formatKey(key, opts.keyFormat));
    }
    // Buffered once, so every attempt sends the same bytes even when the caller gave a one-shot stream.
    const body =
      prepared.body === null ? undefined : new Uint8Array(await untilAborted(prepared.arrayBuffer(), signal));
    const attemptInit: RequestInit = {
      ...(input instanceof Request ? requestSettings(prepared) : {}),
      ...init,
      method,
      headers,
      body: body ?? null,
    };
    // A request without a key is retried only if its method is idempotent: resending a keyless POST
    // could run it twice.
    const maxAttempts =
      key !== undefined || IDEMPOTENT_METHODS.has(method.toUpperCase()) ? opts.retries + 1 : 1;

    let last: Outcome | undefined;
    for (let attempt = 1; ; attempt++) {
      const remaining = deadlineAt - opts.clock();
      if (remaining <= 0) return giveUp(last, 'deadline', attempt - 1, key);
      last = await attemptOnce(prepared.url, attemptInit, Math.min(opts.timeoutMs, remaining), signal);
      if (last.response && !last.verdict.retry) return result(last.response, attempt, key);
      if (attempt >= maxAttempts) return giveUp(last, 'retries', attempt, key);
      // Retry-After is the least the server asked for; the jittered backoff still spreads the crowd.
      const retryAfterMs = last.response && last.verdict.retry ? (last.verdict.retryAfterMs ?? 0) : 0;
      const delayMs = Math.max(backoffDelay(attempt - 1, opts), retryAfterMs);
      // Never sleep past the deadline: a wait that ends at or after it could not be followed by an attempt.
      if (opts.clock() + delayMs >= deadlineAt) return giveUp(last, 'deadline', attempt, key);
      notify({
        attempt,
        delayMs,
        status: last.response?.status,
        error: last.response ? undefined : last.error,
        key,
        method,
        url: prepared.url,
      });
      // The retried response's body is not needed; cancelling it frees the connection.
      last.response?.body?.cancel().catch(() => {});
      await untilAborted(opts.sleep(delayMs, signal), signal);
    }
  }

  async function attemptOnce(
    url: string,
    init: RequestInit,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<Outcome> {
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new DOMException(`The attempt timed out after ${timeoutMs} ms`, 'TimeoutError')),
      timeoutMs,
    );
    const attemptSignal = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal;
    let pending: Promise<Response> | undefined;
    try {
      pending = opts.fetch(url, { ...init, signal: attemptSignal });
      // untilAborted: an injected fetch that ignores its signal still cannot hold the call past an abort.
      const response = await untilAborted(pending, attemptSignal);
      // Classified under the same timer: reading a 409's problem body must not hang either.
      const verdict = await untilAborted(classifyResponse(response, opts.clock()), attemptSignal);
      return { response, verdict };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      // A fetch that ignored the abort may still answer: drop that answer's body.
      pending?.then((late) => late.body?.cancel().catch(() => {})).catch(() => {});
      return { error: timeout.signal.aborted ? timeout.signal.reason : error };
    } finally {
      clearTimeout(timer);
    }
  }

  function giveUp(
    last: Outcome | undefined,
    why: 'retries' | 'deadline',
    attempts: number,
    key: string | undefined,
  ): ClientResult {
    // A response, even a 503, is an answer: return it as fetch would. Only "no answer" is an error.
    if (last?.response) return result(last.response, attempts, key);
    const outcome = 'the operation may or may not have run; retry later with the same key';
    if (why === 'deadline') {
      throw new OncelyClientError(
        'ERR_ONCELY_CLIENT_DEADLINE_EXCEEDED',
        `No response within the ${opts.deadlineMs} ms deadline after ${attempts} attempt(s): ${outcome}`,
        { cause: last?.error, key, attempts },
      );
    }
    throw new OncelyClientError(
      'ERR_ONCELY_CLIENT_RETRIES_EXHAUSTED',
      attempts === 1 && key === undefined
        ? 'No response, and a request without an idempotency key whose method is not idempotent is never retried'
        : `No response after ${attempts} attempt(s): ${outcome}`,
      { cause: last?.error, key, attempts },
    );
  }

  function notify(info: Parameters<NonNullable<ResolvedClientOptions['onRetry']>>[0]): void {
    try {
      opts.onRetry?.(info);
    } catch {
      // A logging hook must not change whether a payment is retried.
    }
  }

  async function post<T>(url: string | URL, body: unknown, postOptions: PostOptions = {}) {
    const headers = new Headers(postOptions.headers);
    if (body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    if (!headers.has('accept')) headers.set('accept', 'application/json, application/problem+json');
    if (postOptions.key !== undefined) {
      assertValidKey(postOptions.key, 'the key option');
      const inHeaders = headers.get(opts.keyHeader);
      if (inHeaders !== null && readKey(inHeaders) !== postOptions.key) {
        throw new OncelyClientError(
          'ERR_ONCELY_CLIENT_INVALID_KEY',
          `the key option and the ${opts.keyHeader} header name two different keys`,
        );
      }
      if (inHeaders === null) headers.set(opts.keyHeader, formatKey(postOptions.key, opts.keyFormat));
    }
    const sent = await send(url, {
      method: 'POST',
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      ...(postOptions.signal ? { signal: postOptions.signal } : {}),
    });
    const { response } = sent;
    const type = response.headers.get('content-type') ?? '';
    const text = await untilAborted(response.text(), postOptions.signal);
    let data: unknown;
    if (text.length > 0 && /[/+]json\b/i.test(type)) {
      try {
        data = JSON.parse(text);
      } catch {
        data = undefined;
      }
    }
    if (response.ok) {
      return { ...sent, ok: true, status: response.status, data: data as T, problem: undefined };
    }
    const problem =
      /application\/problem\+json/i.test(type) && data !== null && typeof data === 'object'
        ? (data as ClientProblem)
        : undefined;
    return { ...sent, ok: false, status: response.status, data, problem };
  }

  return {
    request: async (input, init) => (await send(input, init)).response,
    send,
    post: post as OncelyClient['post'],
  };
}

function result(response: Response, attempts: number, key: string | undefined): ClientResult {
  const replayed = response.headers.get('idempotent-replayed')?.trim().toLowerCase();
  // Oncely sends `true`; `?1` is how an RFC 9651 Boolean would say it.
  return { response, replayed: replayed === 'true' || replayed === '?1', attempts, key };
}

/** The settings of a Request object that a fetch(url, init) call would otherwise lose. */
function requestSettings(request: Request): RequestInit {
  return {
    cache: request.cache,
    credentials: request.credentials,
    integrity: request.integrity,
    keepalive: request.keepalive,
    // 'navigate' only exists for requests the browser itself made; fetch refuses to be given it.
    ...(request.mode === 'navigate' ? {} : { mode: request.mode }),
    redirect: request.redirect,
    referrer: request.referrer,
    referrerPolicy: request.referrerPolicy,
  };
}
