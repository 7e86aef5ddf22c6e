// `npm start` prints three curl commands; this runs them as printed (translated to fetch) and checks
// that each answers what the banner says it will.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { startDemo } from './demo-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'oncely-main-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The printed `curl -i -X POST <url> -H '...' ... -d '...'` as a fetch call. */
function fromCurl(command: string): () => Promise<Response> {
  const url = /-X POST (\S+)/.exec(command)?.[1];
  const headers = [...command.matchAll(/-H '([^:']+): ([^']*)'/g)].map(([, name, value]) => [name!, value!]);
  const body = /-d '([^']*)'/.exec(command)?.[1];
  assert.ok(url && body && headers.length === 3, `unexpected curl command: ${command}`);
  return () => fetch(url, { method: 'POST', headers: Object.fromEntries(headers), body });
}

it('serves the demo and its printed curl commands behave as printed', { timeout: 30_000 }, async () => {
  const demo = await startDemo({ ONCELY_DEMO_DIR: dir });
  after(() => demo.child.kill('SIGTERM'));
  const curls = demo
    .banner()
    .split('\n')
    .filter((line) => line.trim().startsWith('curl -i -X POST'))
    .map((line) => fromCurl(line.trim()));
  assert.equal(curls.length, 3);
  const [first, retry, reuse] = curls as [
    () => Promise<Response>,
    () => Promise<Response>,
    () => Promise<Response>,
  ];

  const created = await first();
  assert.equal(created.status, 201);
  const payment = (await created.json()) as { id: string };
  assert.equal(created.headers.get('location'), `/payments/${payment.id}`);

  const replayed = await retry();
  assert.equal(replayed.status, 201);
  assert.equal(replayed.headers.get('idempotent-replayed'), 'true');
  assert.deepEqual(await replayed.json(), payment);

  const reused = await reuse();
  assert.equal(reused.status, 422);
  assert.equal(((await reused.json()) as { code: string }).code, 'ERR_ONCELY_KEY_REUSED');

  const count = /Count the charges: curl -s '(\S+)' -H 'Authorization: (Bearer \S+)'/.exec(demo.banner());
  assert.ok(count, 'the banner says how to count the charges');
  const listed = await fetch(count[1]!, { headers: { authorization: count[2]! } });
  assert.deepEqual(await listed.json(), { data: [payment] });
});
