// The auditor's small parts: body templates, the other payload, the count URL's answer, the raw
// response parser, the comparison of a replay with its first response, and option checks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bodyDifference, headerDifferences, identity } from './compare.ts';
import type { Exchange } from './exchange.ts';
import { CheckError, planCheck } from './index.ts';
import { resolveOptions } from './options.ts';
import { readCount } from './probe.ts';
import { parseResponse } from './raw.ts';
import { otherBody, render, uniqueValues } from './template.ts';

const exchange = (init: Partial<Exchange>): Exchange => ({
  label: 'x',
  status: 200,
  ms: 1,
  headers: [],
  body: Buffer.alloc(0),
  ...init,
});

describe('templates', () => {
  it('renders {{unique}} everywhere, with digits that never repeat within a run', () => {
    const next = uniqueValues(1_700_000_000_000);
    const a = next();
    const b = next();
    assert.match(a, /^\d{16}$/);
    assert.notEqual(a, b);
    assert.equal(render('{"ref":"o_{{unique}}","n":{{unique}}}', '42'), '{"ref":"o_42","n":42}');
  });

  it('makes the other payload: --other-body, else the first JSON number + 1, else another {{unique}}', () => {
    const explicit = otherBody('{"a":1}', '{"a":"{{unique}}x"}')!;
    assert.equal(
      explicit.make({ unique: '7', text: '{"a":1}' }, () => '8'),
      '{"a":"7x"}',
    );
    const bumped = otherBody('{"currency":"eur","items":[{"qty":2}],"amount":1999}', undefined)!;
    assert.equal(bumped.describe, 'items[0].qty: 2 → 3');
    assert.equal(
      bumped.make({ unique: '1', text: '{"currency":"eur","items":[{"qty":2}],"amount":1999}' }, () => '2'),
      '{"currency":"eur","items":[{"qty":3}],"amount":1999}',
    );
    // A number past 2^53 is already rounded when parsed: the next one is changed instead.
    assert.equal(otherBody('{"id":9007199254740993,"amount":5}', undefined)!.describe, 'amount: 5 → 6');
    const unique = otherBody('{"order":"o_{{unique}}"}', undefined)!;
    assert.equal(
      unique.make({ unique: '1', text: '{"order":"o_1"}' }, () => '2'),
      '{"order":"o_2"}',
    );
    assert.equal(otherBody('{"currency":"eur"}', undefined), undefined);
    assert.equal(otherBody('plain text', undefined), undefined);
  });
});

describe('the count URL', () => {
  it('reads a number, an array, count/total fields or a data list; nothing else', () => {
    const count = (text: string, status = 200) => readCount(exchange({ status, body: Buffer.from(text) }));
    assert.equal(count('7'), 7);
    assert.equal(count('[1,2]'), 2);
    assert.equal(count('{"count":3}'), 3);
    assert.equal(count('{"total_count":4,"data":[]}'), 4);
    assert.equal(count('{"data":[{},{}]}'), 2);
    assert.equal(count('{"items":[{}]}'), 1);
    assert.equal(count('{"n":1}'), undefined);
    assert.equal(count('7', 404), undefined);
    assert.equal(count('<html>'), undefined);
  });
});

describe('raw responses', () => {
  it('parses content-length, chunked and an interim 100 Continue', () => {
    const fixed = parseResponse(
      Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\nX-A: b\r\n\r\nokEXTRA'),
    );
    assert.deepEqual(fixed, {
      status: 400,
      headers: [
        ['content-length', '2'],
        ['x-a', 'b'],
      ],
      body: Buffer.from('ok'),
    });
    const chunked = parseResponse(
      Buffer.from(
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
      ),
    );
    assert.equal(chunked?.status, 201);
    assert.equal(chunked?.body.toString(), 'abcde');
    assert.equal(parseResponse(Buffer.from('HTTP/1.1 200 OK\r\nContent-Le')), undefined);
  });
});

describe('comparing a replay with its first response', () => {
  it('names the headers a replay lost or changed, never the ones it may change', () => {
    const first = exchange({
      headers: [
        ['content-type', 'application/json'],
        ['location', '/p/1'],
        ['date', 'Mon'],
        ['x-request-id', 'a'],
        ['set-cookie', 's=1'],
      ],
    });
    const retry = exchange({
      headers: [
        ['content-type', 'application/json; charset=utf-8'],
        ['date', 'Tue'],
        ['x-request-id', 'b'],
        ['idempotent-replayed', 'true'],
      ],
    });
    assert.deepEqual(headerDifferences(first, retry), [
      { name: 'content-type', first: 'application/json', retry: 'application/json; charset=utf-8' },
      { name: 'location', first: '/p/1', retry: undefined },
    ]);
  });

  it('shows where two bodies first differ, escaped', () => {
    assert.equal(bodyDifference(Buffer.from('same'), Buffer.from('same')), undefined);
    assert.deepEqual(bodyDifference(Buffer.from('{"id":"pay_1"}'), Buffer.from('{"id":"pay_2"}\n')), {
      offset: 11,
      firstBytes: 14,
      retryBytes: 15,
      first: '{"id":"pay_1"}',
      retry: '{"id":"pay_2"}\\x0a',
    });
  });

  it('identifies the resource by the id field, else Location, else the body', () => {
    assert.deepEqual(identity(exchange({ body: Buffer.from('{"data":{"id":7}}') }), 'data.id'), {
      by: 'id',
      value: '7',
    });
    assert.deepEqual(identity(exchange({ headers: [['location', '/p/9']], body: Buffer.from('{}') }), 'id'), {
      by: 'location',
      value: '/p/9',
    });
    assert.equal(identity(exchange({ body: Buffer.from('x') }), 'id').by, 'body');
  });
});

describe('options', () => {
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (error) {
      return error instanceof CheckError ? error.code : String(error);
    }
    return undefined;
  };

  it('refuses unknown options, bad values and headers that could send a request elsewhere', () => {
    const bad = [
      { url: 'http://a.test/', nope: 1 },
      { url: 'http://a.test/', method: 'P OST' },
      { url: 'http://user:pw@a.test/' },
      { url: 'http://a.test/', headers: [['Host', 'b.test']] },
      { url: 'http://a.test/', headers: [['Idempotency-Key', 'k']] },
      { url: 'http://a.test/', headers: [['X-A', 'a\r\nX-B: b']] },
      { url: 'http://a.test/', concurrency: 1 },
      { url: 'http://a.test/', concurrency: 501 },
      { url: 'http://a.test/', keyFormat: 'quoted' },
    ];
    for (const options of bad) {
      assert.equal(
        code(() => resolveOptions(options as never)),
        'ERR_ONCELY_CHECK_INVALID_OPTION',
        JSON.stringify(options),
      );
    }
    assert.equal(
      code(() => resolveOptions({ url: 'http://a.test/', countUrl: 'https://a.test/count' })),
      'ERR_ONCELY_CHECK_OTHER_ORIGIN',
      'another scheme is another origin',
    );
    assert.equal(
      code(() => resolveOptions({ url: 'http://a.test/p', countUrl: 'http://a.test/count' })),
      undefined,
    );
  });

  it('lets the tenant header replace a --header of the same name, and names the second tenant', () => {
    const options = resolveOptions({
      url: 'http://a.test/',
      headers: [['Authorization', 'Bearer live']],
      tenantHeader: 'Authorization: Bearer sk_test_{{tenant}}',
    });
    assert.deepEqual(options.headers, []);
    assert.deepEqual(options.tenant, { name: 'Authorization', value: 'Bearer sk_test_{{tenant}}' });
    assert.deepEqual(resolveOptions({ url: 'http://a.test/', tenantHeader: 'X-Tenant' }).tenant, {
      name: 'X-Tenant',
      value: '{{tenant}}',
    });
  });

  it('plans the requests before sending: skipped cases cost nothing, the count URL adds its reads', () => {
    const plain = planCheck({ url: 'http://a.test/p', body: '{"amount":1}' });
    assert.deepEqual(
      plain.cases.filter((c) => c.skip).map((c) => c.id),
      ['failure', 'tenants'],
    );
    // replay 2 (at most 1 + 12 polls), mismatch 3, concurrent 50 + 1 (50 + 12), four key cases 1
    // each, disconnect 2 (1 + 12).
    assert.deepEqual(plain.requests, { typical: 2 + 3 + 51 + 4 + 2, max: 13 + 3 + 62 + 4 + 13 });
    assert.equal(plain.operations, 8);
    const counted = planCheck({
      url: 'http://a.test/p',
      body: '{"amount":1}',
      countUrl: 'http://a.test/n',
      concurrency: 10,
    });
    // One read before the audit; two per counted case, three for mismatch and concurrent.
    assert.deepEqual(counted.requests, { typical: 1 + 4 + 6 + 14 + 4 + 4, max: 1 + 15 + 6 + 25 + 4 + 15 });
  });
});
