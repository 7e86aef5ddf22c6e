import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, describe, it } from 'node:test';
import type { HttpResponse } from '../http.ts';
import { rawExchange, type TestServer, testServer } from './test-server.ts';
import { writeResponse } from './write-response.ts';

const body = new TextEncoder().encode('{"id":1}');
const response = (status: number): HttpResponse => ({
  status,
  headers: [
    ['content-type', 'application/json'],
    ['set-cookie', 'a=1'],
    ['location', '/orders/1'],
    ['set-cookie', 'b=2'],
  ],
  body,
});

/** The socket writes one response took: `_write` calls and `_writev` calls (each one syscall). */
let writes: string[] = [];
function countWrites(res: ServerResponse): void {
  writes = [];
  const socket = res.socket as unknown as {
    _write: (...args: unknown[]) => unknown;
    _writev: (...args: unknown[]) => unknown;
  };
  const write = socket._write;
  const writev = socket._writev;
  socket._write = function (this: unknown, ...args: unknown[]) {
    writes.push('write');
    return write.apply(this, args);
  };
  socket._writev = function (this: unknown, ...args: unknown[]) {
    writes.push('writev');
    return writev.apply(this, args);
  };
}

let server: TestServer;
after(() => server?.close());

describe('writeResponse', async () => {
  server = await testServer((req, res) => {
    countWrites(res);
    const status = Number(new URL(req.url!, 'http://x').searchParams.get('status'));
    if (req.url!.includes('set=1')) {
      res.setHeader('connection', 'close');
      res.setHeader('location', '/old');
    }
    writeResponse(res, response(status), { statusMessage: req.url!.includes('reason') ? 'Made' : undefined });
  });
  const exchange = (method: string, query: string): Promise<string> =>
    rawExchange(server.port, `${method} /?${query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);

  it('sends head and body in one socket write, every Set-Cookie line apart, with Content-Length', async () => {
    const raw = await exchange('POST', 'status=201');
    assert.deepEqual(writes, ['writev'], 'one writev: the head and the body together');
    const [headText, sent] = raw.split('\r\n\r\n');
    const lines = headText!.split('\r\n');
    assert.equal(lines[0], 'HTTP/1.1 201 Created');
    assert.deepEqual(
      lines.filter((line) => line.startsWith('set-cookie')),
      ['set-cookie: a=1', 'set-cookie: b=2'],
    );
    assert.ok(lines.includes('content-length: 8'));
    assert.ok(lines.includes('location: /orders/1'));
    assert.equal(sent, '{"id":1}');
  });

  it('replaces a field set before by one of the same name, keeps the others; takes a reason phrase', async () => {
    const raw = await exchange('POST', 'status=200&set=1&reason=1');
    const lines = raw.split('\r\n\r\n')[0]!.split('\r\n');
    assert.equal(lines[0], 'HTTP/1.1 200 Made');
    assert.deepEqual(
      lines.filter((line) => /^location:/i.test(line)),
      ['location: /orders/1'],
    );
    assert.ok(lines.some((line) => /^connection: close$/i.test(line)));
  });

  it('sends no body where there is none: HEAD, 204, 304 without a length, 205 as an empty one', async () => {
    for (const [method, status, length] of [
      ['HEAD', 201, undefined],
      ['POST', 204, undefined],
      ['POST', 304, undefined],
      ['POST', 205, '0'],
    ] as const) {
      const raw = await exchange(method, `status=${status}`);
      const [headText, sent] = raw.split('\r\n\r\n');
      assert.equal(sent, '', `${method} ${status}: no body`);
      const declared = /\r\ncontent-length: (\d+)/i.exec(headText!)?.[1];
      assert.equal(declared, length, `${method} ${status}: Content-Length`);
      assert.deepEqual(writes, ['write'], `${method} ${status}: one write`);
    }
  });
});
