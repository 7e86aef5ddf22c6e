import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createClient, isOncelyClientError, OncelyClientError, type RetryInfo } from './index.ts';
import { type Step, startTestServer, type TestServer } from './test-server.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

/** Every test talks to its own path, so scripts and recorded requests never mix. */
let path = '';
let n = 0;
beforeEach(() => {
  path = `/t${++n}`;
});
const url = () => `${server.url}${path}`;
const seen = () => server.requests.filter((r) => r.path === path);

/** Polls until `condition` holds: for waiting on the server, not for timing assertions. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A client whose waits are recorded and skipped, with a fixed jitter, so nothing depends on timing. */
function quickClient(options: Parameters<typeof createClient>[0] = {}) {
  const delays: number[] = [];
  const retries: RetryInfo[] = [];
  const client = createClient({
    sleep: async (ms) => void delays.push(ms),
    random: () => 0.5,
    onRetry: (info) => void retries.push(info),
    ...options,
  });
  return { client, delays, retries };
}

const json = (value: unknown) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(value),
});

describe('keys', () => {
  it('gives a POST one generated key and sends it unchanged on every attempt', async () => {
    server.script(path, [{ kind: 'drop' }, { kind: 'respond', status: 503 }]);
    const { client } = quickClient();
    const result = await client.send(url(), json({ amount: 1 }));
    assert.equal(result.response.status, 201);
    assert.equal(result.attempts, 3);
    assert.match(result.key!, UUID);
    assert.deepEqual(
      seen().map((r) => r.keyLines),
      [[result.key], [result.key], [result.key]],
    );
  });

  it('gives every logical call its own key', async () => {
    const { client } = quickClient();
    const a = await client.send(url(), json({ amount: 1 }));
    const b = await client.send(url(), json({ amount: 1 }));
    assert.notEqual(a.key, b.key);
    assert.equal(server.executions >= 2, true);
    assert.equal(b.replayed, false);
  });

  it('keys PATCH too, but not GET, PUT or DELETE (they are idempotent already)', async () => {
    const { client } = quickClient();
    for (const method of ['PATCH', 'GET', 'PUT', 'DELETE']) {
      await client.request(url(), { method, ...(method === 'GET' ? {} : { body: '{}' }) });
    }
    assert.deepEqual(
      seen().map((r) => [r.method, r.keyLines.length]),
      [
        ['PATCH', 1],
        ['GET', 0],
        ['PUT', 0],
        ['DELETE', 0],
      ],
    );
  });

  it('never overwrites the caller key: init headers, a Request object, the post option', async () => {
    server.script(path, [{ kind: 'drop' }]);
    const { client } = quickClient();
    const fromInit = await client.send(url(), {
      ...json({ a: 1 }),
      headers: { 'content-type': 'application/json', 'Idempotency-Key': 'order_1:pay:1' },
    });
    assert.equal(fromInit.key, 'order_1:pay:1');
    assert.equal(fromInit.attempts, 2);

    const fromRequest = await client.send(
      new Request(url(), { method: 'POST', headers: { 'idempotency-key': '"order_2:pay:1"' }, body: 'x' }),
    );
    assert.equal(fromRequest.key, 'order_2:pay:1', 'the sf-string is reported unquoted');

    const fromPost = await client.post(url(), { a: 3 }, { key: 'order_3:pay:1' });
    assert.equal(fromPost.key, 'order_3:pay:1');

    assert.deepEqual(
      seen().map((r) => r.keyLines),
      [['order_1:pay:1'], ['order_1:pay:1'], ['"order_2:pay:1"'], ['order_3:pay:1']],
      'sent exactly as the caller wrote it, once per request',
    );
  });

  it('refuses a post whose key option contradicts its headers, and an invalid key, before sending', async () => {
    const { client } = quickClient();
    await assert.rejects(
      client.post(url(), {}, { key: 'a', headers: { 'idempotency-key': 'b' } }),
      (error: unknown) => isOncelyClientError(error) && error.code === 'ERR_ONCELY_CLIENT_INVALID_KEY',
    );
    for (const key of ['', 'x'.repeat(256), 'caf\u00e9', 'line\nbreak']) {
      await assert.rejects(client.post(url(), {}, { key }), { code: 'ERR_ONCELY_CLIENT_INVALID_KEY' });
    }
    assert.equal(seen().length, 0);
  });

  it("sends sf-strings with keyFormat: 'sf-string', and the server reads them as the same key", async () => {
    server.script(path, [{ kind: 'execute-then-drop' }]);
    const { client } = quickClient({ keyFormat: 'sf-string' });
    const result = await client.send(url(), json({ amount: 7 }));
    assert.equal(result.response.status, 201);
    assert.equal(result.replayed, true, 'the retry found the first execution under the same key');
    assert.deepEqual(seen()[0]!.keyLines, [`"${result.key}"`]);
    const quoted = await client.post(url(), { amount: 8 }, { key: 'say "hi"\\' });
    assert.equal(quoted.status, 201);
    assert.equal(seen().at(-1)!.keyLines[0], '"say \\"hi\\"\\\\"');
  });

  it('writes and respects the key in a custom keyHeader', async () => {
    const { client } = quickClient({ keyHeader: 'X-Request-Key' });
    const generated = await client.send(url(), json({ a: 1 }));
    const given = await client.send(url(), { ...json({ a: 2 }), headers: { 'x-request-key': 'mine' } });
    assert.equal(given.key, 'mine');
    assert.deepEqual(
      seen().map((r) => [r.headers['x-request-key'], r.keyLines.length]),
      [
        [generated.key, 0],
        ['mine', 0],
      ],
    );
  });

  it('quotes a token-format key only when a bare token could not carry it', async () => {
    const { client } = quickClient();
    await client.post(url(), { a: 1 }, { key: 'order 1, pay' });
    await client.post(url(), { a: 1 }, { key: 'plain-key' });
    assert.deepEqual(
      seen().map((r) => r.keyLines[0]),
      ['"order 1, pay"', 'plain-key'],
    );
  });
});

describe('body', () => {
  const cases: Array<[string, () => RequestInit, string | RegExp]> = [
    ['a string', () => ({ body: 'amount=1&currency=eur' }), 'amount=1&currency=eur'],
    ['bytes', () => ({ body: new TextEncoder().encode('\u0000\u00ffbinary') }), '\u0000\u00ffbinary'],
    ['URLSearchParams', () => ({ body: new URLSearchParams({ a: '1', b: 'two' }) }), 'a=1&b=two'],
    [
      'a one-shot ReadableStream',
      () => ({
        body: new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('part one, '));
            controller.enqueue(new TextEncoder().encode('part two'));
            controller.close();
          },
        }),
        duplex: 'half',
      }),
      'part one, part two',
    ],
    [
      'FormData with a file',
      () => {
        const form = new FormData();
        form.set('note', 'hello');
        form.set('file', new Blob(['file bytes'], { type: 'text/plain' }), 'a.txt');
        return { body: form };
      },
      /name="note"\r\n\r\nhello\r\n[\s\S]*filename="a.txt"[\s\S]*file bytes/,
    ],
  ];
  for (const [name, init, expected] of cases) {
    it(`sends ${name} byte-identical on every attempt`, async () => {
      server.script(path, [{ kind: 'drop' }, { kind: 'execute-then-drop' }]);
      const { client } = quickClient();
      const result = await client.send(url(), { method: 'POST', ...init() });
      assert.equal(result.attempts, 3);
      assert.equal(result.replayed, true);
      const [first, ...rest] = seen();
      const text = first!.body.toString('latin1');
      if (typeof expected === 'string') assert.equal(text, Buffer.from(expected).toString('latin1'));
      else assert.match(text, expected);
      for (const retry of rest) {
        assert.ok(retry.body.equals(first!.body), 'same bytes');
        assert.equal(retry.headers['content-type'], first!.headers['content-type'], 'same content type');
      }
    });
  }
});

describe('what is retried', () => {
  for (const status of [408, 425, 429, 500, 502, 503, 504]) {
    it(`retries ${status}`, async () => {
      server.script(path, [{ kind: 'respond', status }]);
      const { client, retries } = quickClient();
      const result = await client.send(url(), json({ amount: 1 }));
      assert.equal(result.response.status, 201);
      assert.equal(result.attempts, 2);
      assert.equal(retries[0]!.status, status);
      assert.equal(server.executions > 0, true);
    });
  }

  for (const status of [400, 401, 403, 404, 410, 413, 418, 422]) {
    it(`never retries ${status}`, async () => {
      server.script(path, [{ kind: 'respond', status }]);
      const { client, retries } = quickClient();
      const result = await client.send(url(), json({ amount: 1 }));
      assert.equal(result.response.status, status);
      assert.equal(result.attempts, 1);
      assert.equal(retries.length, 0);
      assert.equal(seen().length, 1);
    });
  }

  it('retries a network error after the server ran the operation, and gets the replay', async () => {
    server.script(path, [{ kind: 'execute-then-drop' }]);
    const before = server.executions;
    const { client, retries } = quickClient();
    const result = await client.send(url(), json({ amount: 5 }));
    assert.equal(result.response.status, 201);
    assert.equal(result.replayed, true);
    assert.equal(result.attempts, 2);
    assert.equal(server.executions - before, 1, 'ran once');
    assert.equal(retries[0]!.status, undefined);
    assert.ok(retries[0]!.error instanceof Error, 'the network error is reported');
  });

  it('retries a connection dropped before the server ran anything: no replay, one execution', async () => {
    server.script(path, [{ kind: 'drop' }]);
    const before = server.executions;
    const { client } = quickClient();
    const result = await client.send(url(), json({ amount: 5 }));
    assert.equal(result.replayed, false);
    assert.equal(result.attempts, 2);
    assert.equal(server.executions - before, 1);
  });

  it('retries an attempt that timed out', async () => {
    server.script(path, [{ kind: 'hang' }]);
    const { client, retries } = quickClient({ timeoutMs: 300 });
    const result = await client.send(url(), json({ amount: 1 }));
    assert.equal(result.response.status, 201);
    assert.equal((retries[0]!.error as DOMException).name, 'TimeoutError');
    // Exactly 2 unless the machine is so loaded that a local answer takes 300 ms; then a third is right too.
    assert.ok(result.attempts >= 2);
  });

  it('retries a 409 in progress until the first request finished, then replays it', async () => {
    server.script(path, [{ kind: 'slow', ms: 2_000 }]);
    const key = `in-progress-${path}`;
    const init = {
      ...json({ amount: 9 }),
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
    };
    const before = server.executions;
    // Another process sends the same payment first and is still running when this client sends it.
    const first = fetch(url(), init);
    await until(() => server.executions > before);
    const statuses: Array<number | undefined> = [];
    const delays: number[] = [];
    const client = createClient({
      random: () => 0,
      onRetry: (info) => void statuses.push(info.status),
      // The wait lasts until the first request finished, so the retry finds its stored response.
      sleep: async (ms) => {
        delays.push(ms);
        await server.settled();
      },
    });
    const result = await client.send(url(), init);
    assert.deepEqual(statuses, [409]);
    assert.deepEqual(delays, [1_000], "the 409's Retry-After: 1");
    assert.equal(result.response.status, 201);
    assert.equal(result.replayed, true);
    assert.equal(result.attempts, 2);
    assert.equal((await first).status, 201);
    assert.equal(server.executions - before, 1);
  });

  it('does not retry 409 ERR_ONCELY_RESPONSE_NOT_STORED (the operation ran) or another coded conflict', async () => {
    for (const code of ['ERR_ONCELY_RESPONSE_NOT_STORED', 'ORDER_ALREADY_PAID']) {
      server.script(path, [
        {
          kind: 'respond',
          status: 409,
          headers: { 'content-type': 'application/problem+json' },
          body: JSON.stringify({ status: 409, code }),
        },
      ]);
      const { client } = quickClient();
      const result = await client.post(url(), { amount: 1 });
      assert.equal(result.attempts, 1);
      assert.equal(result.status, 409);
      assert.equal(result.problem?.code, code, 'the body is still there for the caller');
    }
  });

  it('retries a 409 without a code (a Stripe-style concurrent request)', async () => {
    server.script(path, [{ kind: 'respond', status: 409 }]);
    const { client } = quickClient();
    const result = await client.send(url(), json({ amount: 1 }));
    assert.equal(result.attempts, 2);
    assert.equal(result.response.status, 201);
  });

  it('does not retry a real 422: the same key with another body', async () => {
    const { client } = quickClient();
    const first = await client.post(url(), { amount: 1 }, { key: 'k-422' });
    assert.equal(first.status, 201);
    const reused = await client.post(url(), { amount: 2 }, { key: 'k-422' });
    assert.equal(reused.status, 422);
    assert.equal(reused.attempts, 1);
    assert.equal(reused.ok, false);
    assert.equal(reused.problem?.code, 'ERR_ONCELY_KEY_REUSED');
  });

  it('retries a GET without giving it a key', async () => {
    server.script(path, [{ kind: 'respond', status: 503 }, { kind: 'drop' }]);
    const { client } = quickClient();
    const result = await client.send(url());
    assert.equal(result.response.status, 200);
    assert.equal(result.attempts, 3);
    assert.equal(result.key, undefined);
    assert.ok(seen().every((r) => r.keyLines.length === 0));
  });

  it('never resends a POST that carries no key (POST not in methods)', async () => {
    server.script(path, [{ kind: 'respond', status: 503 }]);
    const { client } = quickClient({ methods: ['PATCH'] });
    const result = await client.send(url(), json({ amount: 1 }));
    assert.equal(result.response.status, 503);
    assert.equal(result.attempts, 1);
    assert.equal(seen()[0]!.keyLines.length, 0);

    server.script(path, [{ kind: 'drop' }]);
    await assert.rejects(client.send(url(), json({ amount: 1 })), (error: unknown) => {
      assert.ok(error instanceof OncelyClientError);
      assert.equal(error.code, 'ERR_ONCELY_CLIENT_RETRIES_EXHAUSTED');
      assert.equal(error.attempts, 1);
      return true;
    });
  });
});

describe('retries run out', () => {
  it('returns the last response when every attempt got a retryable status', async () => {
    server.script(path, Array<Step>(10).fill({ kind: 'respond', status: 503 }));
    const { client } = quickClient({ retries: 3 });
    const result = await client.send(url(), json({ amount: 1 }));
    assert.equal(result.response.status, 503);
    assert.equal(result.attempts, 4);
    assert.equal(seen().length, 4);
  });

  it('rejects with ERR_ONCELY_CLIENT_RETRIES_EXHAUSTED (a TypeError, like fetch) when no attempt got a response', async () => {
    server.script(path, Array<Step>(10).fill({ kind: 'drop' }));
    const { client } = quickClient({ retries: 2 });
    const error = await client.send(url(), json({ amount: 1 })).then(
      () => assert.fail('should reject'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof TypeError, 'catch (e instanceof TypeError) around fetch keeps working');
    assert.ok(isOncelyClientError(error));
    assert.equal(error.code, 'ERR_ONCELY_CLIENT_RETRIES_EXHAUSTED');
    assert.equal(error.attempts, 3);
    assert.equal(error.key, seen()[0]!.keyLines[0], 'the key to retry with later');
    assert.ok(error.cause instanceof Error);
    assert.match(error.docsUrl, /docs\/client\.md#err_oncely_client_retries_exhausted$/);
  });

  it('retries 0 means one attempt', async () => {
    server.script(path, [{ kind: 'respond', status: 503 }]);
    const { client } = quickClient({ retries: 0 });
    assert.equal((await client.send(url(), json({}))).attempts, 1);
  });
});

describe('Retry-After', () => {
  it('waits the delta-seconds the server asked for', async () => {
    server.script(path, [{ kind: 'respond', status: 429, headers: { 'retry-after': '3' } }]);
    const { client, delays } = quickClient();
    await client.send(url(), json({}));
    assert.deepEqual(delays, [3_000]);
  });

  it('waits until the HTTP-date the server named', async () => {
    const now = Date.UTC(2030, 0, 1, 0, 0, 0);
    server.script(path, [
      { kind: 'respond', status: 503, headers: { 'retry-after': 'Tue, 01 Jan 2030 00:00:05 GMT' } },
    ]);
    const { client, delays } = quickClient({ clock: () => now });
    await client.send(url(), json({}));
    assert.deepEqual(delays, [5_000]);
  });

  it('falls back to backoff for a garbage value, and never waits less than the backoff', async () => {
    server.script(path, [
      { kind: 'respond', status: 503, headers: { 'retry-after': 'soon' } },
      { kind: 'respond', status: 503, headers: { 'retry-after': '0' } },
    ]);
    const { client, delays } = quickClient({ baseDelayMs: 100 });
    await client.send(url(), json({}));
    // random 0.5: half of 100 * 2^0, then half of 100 * 2^1.
    assert.deepEqual(delays, [50, 100]);
  });
});

describe('backoff', () => {
  it('draws each wait from [0, min(maxDelayMs, baseDelayMs * 2^n)) with the injected random', async () => {
    server.script(path, Array<Step>(6).fill({ kind: 'respond', status: 500 }));
    const draws = [0, 0.999_999, 0.5, 0.25, 1, 0.75];
    const { client, delays } = quickClient({
      retries: 6,
      baseDelayMs: 100,
      maxDelayMs: 1_000,
      random: () => draws.shift()!,
    });
    const result = await client.send(url(), json({}));
    assert.equal(result.attempts, 7);
    // caps: 100, 200, 400, 800, 1000 (capped), 1000 (capped); a random of 1 stays below the cap.
    assert.deepEqual(delays, [0, 199, 200, 200, 999, 750]);
  });
});

describe('deadline', () => {
  /** A clock that only the injected sleep moves. */
  function fakeTime() {
    let now = 1_000_000;
    const slept: number[] = [];
    return {
      clock: () => now,
      sleep: async (ms: number) => {
        slept.push(ms);
        now += ms;
      },
      slept,
    };
  }

  it('stops before a wait that would end past the deadline and returns the last response', async () => {
    server.script(
      path,
      Array<Step>(10).fill({ kind: 'respond', status: 503, headers: { 'retry-after': '10' } }),
    );
    const time = fakeTime();
    const client = createClient({ clock: time.clock, sleep: time.sleep, retries: 10, deadlineMs: 25_000 });
    const result = await client.send(url(), json({}));
    assert.equal(result.response.status, 503);
    assert.equal(result.attempts, 3, 'attempts at 0 s, 10 s and 20 s; a fourth would be at 30 s');
    assert.deepEqual(time.slept, [10_000, 10_000]);
  });

  it('rejects with ERR_ONCELY_CLIENT_DEADLINE_EXCEEDED when no attempt got a response in time', async () => {
    server.script(path, Array<Step>(10).fill({ kind: 'drop' }));
    const time = fakeTime();
    const client = createClient({
      clock: time.clock,
      sleep: time.sleep,
      retries: 10,
      deadlineMs: 2_500,
      baseDelayMs: 1_000,
      maxDelayMs: 1_000,
      random: () => 0.999,
    });
    await assert.rejects(client.send(url(), json({})), (error: unknown) => {
      assert.ok(isOncelyClientError(error));
      assert.equal(error.code, 'ERR_ONCELY_CLIENT_DEADLINE_EXCEEDED');
      assert.equal(error.attempts, 3);
      return true;
    });
    assert.deepEqual(time.slept, [999, 999], 'never slept past the deadline');
    assert.equal(seen().length, 3);
  });

  it('cuts an attempt at the deadline even when timeoutMs is longer', async () => {
    server.script(path, [{ kind: 'hang' }]);
    const client = createClient({ deadlineMs: 200, timeoutMs: 60_000 });
    const started = Date.now();
    await assert.rejects(client.send(url(), json({})), (error: unknown) => {
      assert.ok(isOncelyClientError(error));
      assert.equal(error.code, 'ERR_ONCELY_CLIENT_DEADLINE_EXCEEDED');
      assert.equal((error.cause as DOMException).name, 'TimeoutError');
      assert.equal(error.attempts, 1);
      return true;
    });
    assert.ok(Date.now() - started < 10_000, 'ended near the 200 ms deadline, not after a minute');
  });
});

describe('abort', () => {
  it('ends at once with the abort reason when aborted during an attempt', async () => {
    server.script(path, [{ kind: 'hang' }]);
    const controller = new AbortController();
    const reason = new Error('the user left');
    const { client } = quickClient({ timeoutMs: 60_000 });
    const started = Date.now();
    const pending = client.send(url(), { ...json({}), signal: controller.signal });
    await until(() => seen().length === 1); // the attempt is at the server, which never answers
    controller.abort(reason);
    await assert.rejects(pending, (error: unknown) => error === reason);
    assert.ok(Date.now() - started < 10_000);
    assert.equal(seen().length, 1, 'not retried');
  });

  it('ends at once with the abort reason when aborted during a backoff wait', async () => {
    server.script(path, [{ kind: 'respond', status: 503, headers: { 'retry-after': '60' } }]);
    const controller = new AbortController();
    const client = createClient({
      // onRetry runs just before the (real) 60 s sleep starts: abort a little into it.
      onRetry: () => void setTimeout(() => controller.abort('cancelled'), 50),
    });
    const started = Date.now();
    const pending = client.send(url(), { ...json({}), signal: controller.signal });
    await assert.rejects(pending, (error: unknown) => error === 'cancelled');
    assert.ok(Date.now() - started < 10_000, 'did not wait out the 60 s Retry-After');
    assert.equal(seen().length, 1);
  });

  it('ends at once even when an injected sleep ignores the signal', async () => {
    server.script(path, [{ kind: 'respond', status: 503 }]);
    const controller = new AbortController();
    const client = createClient({
      sleep: () => new Promise<void>(() => {}),
      onRetry: () => void setTimeout(() => controller.abort('stop'), 50),
    });
    const pending = client.send(url(), { ...json({}), signal: controller.signal });
    await assert.rejects(pending, (error: unknown) => error === 'stop');
  });

  it('sends nothing when the signal is already aborted', async () => {
    const { client } = quickClient();
    await assert.rejects(
      client.send(url(), { ...json({}), signal: AbortSignal.abort('early') }),
      (error: unknown) => error === 'early',
    );
    assert.equal(seen().length, 0);
  });
});

describe('results', () => {
  it('request() is a drop-in fetch: a real Response, Request objects accepted', async () => {
    const { client } = quickClient();
    const fetchLike: typeof fetch = client.request;
    const response = await fetchLike(new Request(url(), { method: 'POST', body: '{"a":1}' }));
    assert.ok(response instanceof Response);
    assert.equal(response.status, 201);
    assert.equal(response.url, url());
    assert.equal(((await response.json()) as { path: string }).path, path);
  });

  it('send() reports replayed and attempts', async () => {
    server.script(path, [{ kind: 'execute-then-drop' }]);
    const { client } = quickClient();
    const key = 'results-1';
    const headers = { 'idempotency-key': key };
    const first = await client.send(url(), { method: 'POST', headers, body: 'x' });
    assert.deepEqual([first.replayed, first.attempts, first.key], [true, 2, key]);
    const again = await client.send(url(), { method: 'POST', headers, body: 'x' });
    assert.deepEqual([again.replayed, again.attempts], [true, 1]);
    const other = await client.send(url(), { method: 'POST', body: 'x' });
    assert.deepEqual([other.replayed, other.attempts], [false, 1]);
  });

  it('post() sends JSON and returns the typed body', async () => {
    const { client } = quickClient();
    const result = await client.post<{ execution: number; method: string }>(url(), { amount: 3 });
    assert.equal(result.ok, true);
    if (!result.ok) return;
    assert.equal(result.data.method, 'POST');
    assert.equal(result.status, 201);
    assert.equal(result.response.bodyUsed, true);
    assert.equal(seen()[0]!.headers['content-type'], 'application/json');
    assert.equal(seen()[0]!.body.toString(), '{"amount":3}');
  });

  it('onRetry sees each retry; a throwing hook changes nothing', async () => {
    server.script(path, [{ kind: 'respond', status: 503 }, { kind: 'drop' }]);
    const infos: RetryInfo[] = [];
    const client = createClient({
      sleep: async () => {},
      random: () => 0,
      onRetry: (info) => {
        infos.push(info);
        throw new Error('a broken logger');
      },
    });
    const result = await client.send(url(), json({}));
    assert.equal(result.attempts, 3);
    assert.deepEqual(
      infos.map(({ attempt, status, key, method, url: u, delayMs }) => ({
        attempt,
        status,
        key,
        method,
        u,
        delayMs,
      })),
      [
        { attempt: 1, status: 503, key: result.key, method: 'POST', u: url(), delayMs: 0 },
        { attempt: 2, status: undefined, key: result.key, method: 'POST', u: url(), delayMs: 0 },
      ],
    );
  });

  it('counts an injected fetch that throws synchronously as an attempt without a response', async () => {
    let calls = 0;
    const client = createClient({
      sleep: async () => {},
      fetch: () => {
        if (++calls === 1) throw new TypeError('no socket');
        return Promise.resolve(new Response('ok', { status: 201 }));
      },
    });
    const result = await client.send('https://api.example.test/x', { method: 'POST', body: 'x' });
    assert.deepEqual([result.attempts, result.response.status], [2, 201]);
  });

  it('uses an injected fetch', async () => {
    const calls: string[] = [];
    const client = createClient({
      fetch: async (input, init) => {
        calls.push(`${init?.method} ${String(input)}`);
        return new Response('{}', { status: 200, headers: { 'idempotent-replayed': 'true' } });
      },
    });
    const result = await client.send('https://api.example.test/x', { method: 'POST', body: '{}' });
    assert.deepEqual(calls, ['POST https://api.example.test/x']);
    assert.equal(result.replayed, true);
  });
});
