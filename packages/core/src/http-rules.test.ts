import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bodyAllowed,
  groupHeaders,
  headerObject,
  headerPairs,
  splitTarget,
  webHeaderPairs,
  webResponse,
} from './http-rules.ts';

/** [method, status, whether the response has a body]. */
const BODY_TABLE: Array<[string, number, boolean]> = [
  ['POST', 200, true],
  ['POST', 201, true],
  ['POST', 202, true],
  ['POST', 206, true],
  ['POST', 301, true],
  ['POST', 400, true],
  ['POST', 500, true],
  ['GET', 200, true],
  ['POST', 100, false],
  ['POST', 103, false],
  ['POST', 204, false],
  ['POST', 205, false],
  ['POST', 304, false],
  ['HEAD', 200, false],
  ['head', 201, false],
  ['HEAD', 500, false],
];

describe('bodyAllowed', () => {
  it('has no body for HEAD, 1xx, 204, 205 and 304, and one for everything else', () => {
    for (const [method, status, allowed] of BODY_TABLE) {
      assert.equal(bodyAllowed(method, status), allowed, `${method} ${status}`);
    }
    assert.equal(bodyAllowed(undefined, 200), true, 'an unknown method is not HEAD');
  });
});

describe('splitTarget', () => {
  it('keeps an origin-form target as received and parses an absolute-form one', () => {
    assert.deepEqual(splitTarget('/a/../b?x=1'), { path: '/a/../b', query: '?x=1' });
    assert.deepEqual(splitTarget('/orders'), { path: '/orders', query: '' });
    assert.deepEqual(splitTarget('/orders?'), { path: '/orders', query: '?' });
    assert.deepEqual(splitTarget('http://h:8080/orders?x=1'), { path: '/orders', query: '?x=1' });
    assert.equal(splitTarget('*'), null);
    assert.equal(splitTarget('example.com:443'), null);
  });
});

describe('header pairs', () => {
  it('turns a header object into pairs, array values into one pair a line', () => {
    assert.deepEqual(headerPairs({ 'set-cookie': ['a=1', 'b=2'], 'content-length': 3, gone: undefined }), [
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
      ['content-length', '3'],
    ]);
  });

  it('groups pairs by lower-case name in first-seen order, and back into an object', () => {
    const pairs: Array<[string, string]> = [
      ['Set-Cookie', 'a=1'],
      ['content-type', 'text/plain'],
      ['set-cookie', 'b=2'],
    ];
    assert.deepEqual(
      [...groupHeaders(pairs)],
      [
        ['set-cookie', ['a=1', 'b=2']],
        ['content-type', ['text/plain']],
      ],
    );
    assert.deepEqual(headerObject(pairs), { 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' });
  });

  it('keeps every Set-Cookie line of web Headers apart', () => {
    const headers = new Headers([
      ['set-cookie', 'a=1'],
      ['x-one', '1'],
      ['set-cookie', 'b=2'],
    ]);
    assert.deepEqual(webHeaderPairs(headers), [
      ['x-one', '1'],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ]);
  });
});

describe('webResponse', () => {
  const body = new TextEncoder().encode('hello');
  const headers: Array<[string, string]> = [
    ['set-cookie', 'a=1'],
    ['set-cookie', 'b=2'],
  ];

  it('keeps the status, every header line and the bytes', async () => {
    const response = webResponse({ status: 201, headers, body }, 'POST');
    assert.equal(response.status, 201);
    assert.deepEqual(response.headers.getSetCookie(), ['a=1', 'b=2']);
    assert.equal(await response.text(), 'hello');
  });

  it('has no body where bodyAllowed says so (a web Response refuses one for 204, 205, 304)', () => {
    for (const [method, status, allowed] of BODY_TABLE) {
      if (status < 200) continue; // a web Response cannot have a 1xx status at all
      const response = webResponse({ status, headers, body }, method);
      assert.equal(response.body === null, !allowed, `${method} ${status}`);
    }
  });
});
