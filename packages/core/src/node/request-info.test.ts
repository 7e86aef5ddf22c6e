import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { HttpRequestInfo } from '../http.ts';
import { badTarget, requestInfo } from './request-info.ts';
import { rawExchange, type TestServer, testServer } from './test-server.ts';

let server: TestServer;
after(() => server?.close());
let seen: HttpRequestInfo | undefined;

describe('requestInfo', async () => {
  server = await testServer((req, res) => {
    seen = requestInfo(req, res, { scope: 'tenant-a', body: 'b' });
    res.end();
  });
  const get = (target: string, headers = ''): Promise<string> =>
    rawExchange(server.port, `POST ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${headers}\r\n`);

  it('splits an origin-form target as received and keeps every key line apart', async () => {
    await get(
      '/orders/%7e1?b=2&a=1',
      'Idempotency-Key: k1\r\nIdempotency-Key: k2\r\nContent-Type: application/json\r\n',
    );
    assert.ok(seen);
    const { signal, ...rest } = seen;
    assert.deepEqual(rest, {
      method: 'POST',
      path: '/orders/%7e1',
      query: '?b=2&a=1',
      keyHeader: ['k1', 'k2'],
      contentType: 'application/json',
      scope: 'tenant-a',
      body: 'b',
    });
    assert.ok(signal instanceof AbortSignal);
  });

  it('takes the path and query of an absolute-form target, and refuses anything else', async () => {
    await get('http://upstream.example/orders?x=1');
    assert.equal(seen?.path, '/orders');
    assert.equal(seen?.query, '?x=1');
    await get('*');
    assert.equal(seen, undefined);
    assert.equal(badTarget().status, 400);
  });
});
