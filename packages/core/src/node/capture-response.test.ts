import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import type { HttpDecision, HttpResponse } from '../http.ts';
import { captureResponse } from './capture-response.ts';
import type { ResponseHead } from './response-recorder.ts';
import { type TestServer, testServer } from './test-server.ts';

type Execute = Extract<HttpDecision, { kind: 'execute' }>;
type Settled = ['commit', HttpResponse] | ['tooLarge', ResponseHead] | ['abort', string];

/** An execute decision that notes what it settled with; its commit waits for `release()`. */
function fakeDecision(): {
  decision: Execute;
  settled: Settled[];
  release: () => void;
  asked: Promise<void>;
} {
  const settled: Settled[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let asked!: () => void;
  const wasAsked = new Promise<void>((resolve) => {
    asked = resolve;
  });
  const decision = {
    commit: async (response: HttpResponse) => {
      settled.push(['commit', { ...response, body: new Uint8Array(response.body) }]);
      asked();
      await gate;
      return 'committed' as const;
    },
    commitTooLarge: async (head: ResponseHead) => {
      settled.push(['tooLarge', head]);
      asked();
      await gate;
      return 'committed' as const;
    },
    abort: async (reason: unknown) => {
      settled.push(['abort', reason instanceof Error ? reason.message : String(reason)]);
      asked();
    },
    clientGone: () => {},
  } as unknown as Execute;
  return { decision, settled, release, asked: wasAsked };
}

/** A client that keeps what it has received so far, readable at any moment. */
function client(port: number, request: string): { received: () => string; closed: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  const received = (): string => Buffer.concat(chunks).toString('latin1');
  socket.on('data', (chunk) => chunks.push(chunk));
  const closed = new Promise<string>((resolve, reject) => {
    socket.on('close', () => resolve(received()));
    socket.on('error', reject);
  });
  socket.write(request);
  return { received, closed };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const text = (body: Uint8Array): string => new TextDecoder().decode(body);
const request = (method: string, path: string): string =>
  `${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;

let server: TestServer;
let handle: (res: ServerResponse, method: string) => void = () => {};
after(() => server?.close());

describe('captureResponse', async () => {
  server = await testServer((req, res) => handle(res, req.method!));

  it('records the head (writeHead fields too) and every chunk, and holds the end until the commit', async () => {
    const { decision, settled, release, asked } = fakeDecision();
    handle = (res, method) => {
      captureResponse(res, { decision, maxResponseBytes: 100, method });
      res.setHeader('content-type', 'text/plain');
      res.writeHead(201, { 'x-one': '1', 'set-cookie': ['a=1', 'b=2'] });
      res.write('ab');
      res.write(Buffer.from('cd'));
      res.end('ef');
    };
    const exchange = client(server.port, request('POST', '/'));
    await asked;
    await sleep(50);
    assert.equal(
      exchange.received().includes('0\r\n\r\n'),
      false,
      'the chunked terminator waits for the commit',
    );
    release();
    const raw = await exchange.closed;
    assert.match(raw, /^HTTP\/1\.1 201 /);
    assert.match(raw, /0\r\n\r\n$/);
    assert.equal(settled.length, 1);
    const [kind, response] = settled[0] as ['commit', HttpResponse];
    assert.equal(kind, 'commit');
    assert.equal(response.status, 201);
    assert.equal(text(response.body), 'abcdef');
    const headers = response.headers.map(([name, value]) => `${name}: ${value}`);
    for (const line of ['content-type: text/plain', 'x-one: 1', 'set-cookie: a=1', 'set-cookie: b=2']) {
      assert.ok(headers.includes(line), line);
    }
  });

  it('holds the write that completes a known Content-Length until the commit, like end()', async () => {
    const { decision, settled, release, asked } = fakeDecision();
    handle = (res, method) => {
      captureResponse(res, { decision, maxResponseBytes: 100, method });
      res.setHeader('content-length', '6');
      res.write('abc');
      setTimeout(() => {
        // The last write of a piped body: the client would have the whole response with it.
        assert.equal(res.write('def'), true, 'reported as written, so a pipe does not wait for drain');
        setTimeout(() => res.end(), 20);
      }, 20);
    };
    const exchange = client(server.port, request('POST', '/'));
    await asked;
    await sleep(80);
    assert.ok(exchange.received().endsWith('\r\n\r\nabc'), 'the first chunk went out as written');
    assert.deepEqual(
      settled.map(([kind]) => kind),
      ['commit'],
    );
    release();
    const raw = await exchange.closed;
    assert.ok(raw.endsWith('\r\n\r\nabcdef'));
    assert.equal(text((settled[0] as ['commit', HttpResponse])[1].body), 'abcdef');
  });

  it('past maxResponseBytes sends the whole body and commits it too large', async () => {
    const { decision, settled, release } = fakeDecision();
    release();
    handle = (res, method) => {
      captureResponse(res, { decision, maxResponseBytes: 3, method });
      res.write('abcd');
      res.end('efgh');
    };
    const raw = await client(server.port, request('POST', '/')).closed;
    assert.match(raw, /4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n$/);
    assert.equal(settled.length, 1);
    assert.equal(settled[0]![0], 'tooLarge');
    assert.equal((settled[0] as ['tooLarge', ResponseHead])[1].status, 200);
  });

  it('stores and sends no body where there is none: a 205, a HEAD', async () => {
    for (const [method, status] of [
      ['POST', 205],
      ['HEAD', 200],
    ] as const) {
      const { decision, settled, release } = fakeDecision();
      release();
      handle = (res, actual) => {
        captureResponse(res, { decision, maxResponseBytes: 100, method: actual });
        res.statusCode = status;
        res.setHeader('content-length', '4');
        res.end('body');
      };
      const raw = await client(server.port, request(method, '/')).closed;
      assert.ok(raw.endsWith('\r\n\r\n'), `${method} ${status}: no body sent`);
      const [kind, response] = settled[0] as ['commit', HttpResponse];
      assert.equal(kind, 'commit');
      assert.equal(response.status, status);
      assert.equal(response.body.byteLength, 0, `${method} ${status}: no body stored`);
    }
  });

  it('aborts instead of committing after fail(), or when failed() says an error handler answered', async () => {
    const first = fakeDecision();
    handle = (res, method) => {
      const capture = captureResponse(res, { decision: first.decision, maxResponseBytes: 100, method });
      void capture.fail(new Error('boom')).then(() => res.writeHead(500).end('error'));
    };
    assert.match(
      await client(server.port, request('POST', '/')).closed,
      /^HTTP\/1\.1 500 [\s\S]*\r\nerror\r\n/,
    );
    assert.deepEqual(first.settled, [['abort', 'boom']]);

    const second = fakeDecision();
    handle = (res, method) => {
      let failed = false;
      captureResponse(res, {
        decision: second.decision,
        maxResponseBytes: 100,
        method,
        failed: () => failed,
      });
      failed = true;
      res.writeHead(500).end('error');
    };
    assert.match(await client(server.port, request('POST', '/')).closed, /^HTTP\/1\.1 500 /);
    assert.deepEqual(second.settled, [['abort', 'the handler failed']]);
  });
});
