import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BodyTooLargeError, RequestAbortedError, readBody } from './read-body.ts';
import { rawExchange, type TestServer, testServer } from './test-server.ts';

/** What the reader gave, or failed with, for each request the server saw. */
const seen: Array<{ bytes?: string; error?: Error; after?: string }> = [];

/** Read what is left of the stream, as a parser mounted after the reader would. */
async function rest(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((server) => server.close())));

async function server(restore: boolean, limit = 10): Promise<number> {
  const started = await testServer(async (req, res) => {
    const entry: (typeof seen)[number] = {};
    seen.push(entry);
    try {
      entry.bytes = Buffer.from(await readBody(req, { limit, restore })).toString();
      if (restore) entry.after = await rest(req);
      res.end('ok');
    } catch (error) {
      entry.error = error as Error;
      if (error instanceof BodyTooLargeError) res.writeHead(error.status).end('too large');
    }
  });
  servers.push(started);
  return started.port;
}

const post = (headers: string, body = ''): string =>
  `POST /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${headers}\r\n${body}`;

describe('readBody', () => {
  it('reads a body within the limit, with a length or chunked', async () => {
    const port = await server(false);
    seen.length = 0;
    assert.match(await rawExchange(port, post('Content-Length: 5\r\n', 'hello')), /^HTTP\/1\.1 200/);
    assert.match(
      await rawExchange(port, post('Transfer-Encoding: chunked\r\n', '3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n')),
      /^HTTP\/1\.1 200/,
    );
    assert.match(await rawExchange(port, post('')), /^HTTP\/1\.1 200/, 'no body at all');
    assert.deepEqual(
      seen.map((entry) => entry.bytes),
      ['hello', 'abcde', ''],
    );
  });

  it('refuses a declared length over the limit at once, and a chunked one as it passes the limit', async () => {
    const port = await server(false);
    seen.length = 0;
    const declared = await rawExchange(port, post('Content-Length: 11\r\n', 'hello world'));
    assert.match(declared, /^HTTP\/1\.1 413/);
    const chunked = await rawExchange(
      port,
      post('Transfer-Encoding: chunked\r\n', '6\r\nabcdef\r\n6\r\nghijkl\r\n6\r\nmnopqr\r\n0\r\n\r\n'),
    );
    assert.match(chunked, /^HTTP\/1\.1 413/, 'the answer goes out on the same connection');
    for (const entry of seen) {
      assert.ok(entry.error instanceof BodyTooLargeError);
      assert.equal(entry.error.limit, 10);
      assert.equal((entry.error as BodyTooLargeError).type, 'entity.too.large', 'shaped like body-parser');
    }
    assert.equal(seen.length, 2);
  });

  it('fails with RequestAbortedError when the client leaves mid-body', async () => {
    const port = await server(false, 100);
    seen.length = 0;
    await rawExchange(port, post('Content-Length: 50\r\n', 'only part'), { abortAfterMs: 50 });
    for (let i = 0; i < 50 && seen[0]?.error === undefined; i++) await sleep(10);
    assert.ok(seen[0]?.error instanceof RequestAbortedError, String(seen[0]?.error));
    assert.equal((seen[0].error as RequestAbortedError).status, 400);
  });

  it('with restore, gives the bytes back: a reader after it gets the same body', async () => {
    const port = await server(true, 1000);
    seen.length = 0;
    await rawExchange(port, post('Content-Length: 5\r\n', 'hello'));
    // Sent in parts: the reader sees several chunks and gives them back as one.
    await rawExchange(port, [
      post('Transfer-Encoding: chunked\r\n', '3\r\nabc\r\n'),
      '3\r\ndef\r\n',
      '0\r\n\r\n',
    ]);
    await rawExchange(port, post(''));
    assert.deepEqual(seen, [
      { bytes: 'hello', after: 'hello' },
      { bytes: 'abcdef', after: 'abcdef' },
      { bytes: '', after: '' },
    ]);
  });
});
