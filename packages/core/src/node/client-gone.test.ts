import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { onClientGone } from './client-gone.ts';
import { rawExchange, type TestServer, testServer } from './test-server.ts';

let server: TestServer;
after(() => server?.close());
const gone: string[] = [];

describe('onClientGone', async () => {
  server = await testServer(async (req, res) => {
    onClientGone(res, { clientGone: () => gone.push(req.url!) });
    if (req.url === '/slow') await sleep(200);
    res.end('done');
  });
  const exchange = (path: string, abortAfterMs?: number): Promise<string> =>
    rawExchange(server.port, `POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, {
      ...(abortAfterMs === undefined ? {} : { abortAfterMs }),
    });

  it('tells the decision when the client leaves before its response, and only then', async () => {
    await exchange('/fast');
    await exchange('/slow', 50);
    await sleep(250);
    assert.deepEqual(gone, ['/slow']);
  });
});
