import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpIdempotency } from './http.ts';
import { memoryStore } from './memory-store.ts';

test('a JSON body naming a member twice gets a 400 problem, and nothing is recorded for its key', async () => {
  const http = httpIdempotency({ store: memoryStore() });
  const request = (body: string) => ({
    method: 'POST',
    path: '/payments',
    keyHeader: 'pay-1',
    contentType: 'application/json',
    body,
  });

  const refused = await http.handle(request('{"amt":99,"amt":10}'));
  assert.equal(refused.kind, 'respond');
  assert.ok(refused.kind === 'respond');
  assert.equal(refused.replayed, false);
  assert.equal(refused.response.status, 400);
  assert.ok(
    refused.response.headers.some(
      ([name, value]) => name === 'content-type' && value === 'application/problem+json',
    ),
  );
  const problem = JSON.parse(new TextDecoder().decode(refused.response.body)) as Record<string, unknown>;
  assert.equal(problem.code, 'ERR_ONCELY_BODY_AMBIGUOUS');
  assert.equal(problem.status, 400);

  // The key was never taken: the corrected request runs, neither a 422 mismatch nor a 409.
  const corrected = await http.handle(request('{"amt":10}'));
  assert.equal(corrected.kind, 'execute');
  assert.ok(corrected.kind === 'execute');
  assert.equal(corrected.recorded, true);
  await corrected.commit({ status: 201, headers: [], body: new Uint8Array() });
});
