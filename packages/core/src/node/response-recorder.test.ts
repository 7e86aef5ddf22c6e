import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HttpDecision, HttpResponse } from '../http.ts';
import { type ResponseHead, responseRecorder } from './response-recorder.ts';

type Execute = Extract<HttpDecision, { kind: 'execute' }>;

/** An execute decision that only notes what it was asked to commit. */
function fakeDecision(): {
  decision: Execute;
  commits: Array<['commit', HttpResponse] | ['tooLarge', ResponseHead]>;
} {
  const commits: Array<['commit', HttpResponse] | ['tooLarge', ResponseHead]> = [];
  const decision = {
    commit: async (response: HttpResponse) => {
      commits.push(['commit', response]);
      return 'committed' as const;
    },
    commitTooLarge: async (head: ResponseHead) => {
      commits.push(['tooLarge', head]);
      return 'committed' as const;
    },
  } as unknown as Execute;
  return { decision, commits };
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const head: ResponseHead = { status: 201, headers: [['content-type', 'text/plain']] };

describe('responseRecorder', () => {
  it('commits the whole body up to maxResponseBytes, limit included', async () => {
    const { decision, commits } = fakeDecision();
    const recorder = responseRecorder(decision, { maxResponseBytes: 6, method: 'POST' });
    assert.equal(recorder.add(bytes('abc')), true);
    assert.equal(recorder.add(bytes('def')), true);
    assert.equal(recorder.size, 6);
    assert.deepEqual(recorder.body(), bytes('abcdef'));
    assert.equal(await recorder.commit(head), 'committed');
    assert.deepEqual(commits, [['commit', { ...head, body: bytes('abcdef') }]]);
  });

  it('past the limit counts without keeping, hands over what it kept, and commits too large', async () => {
    const { decision, commits } = fakeDecision();
    const recorder = responseRecorder(decision, { maxResponseBytes: 4, method: 'POST' });
    assert.equal(recorder.add(bytes('abc')), true);
    assert.equal(recorder.add(bytes('de')), false);
    assert.deepEqual(recorder.takeChunks(), [bytes('abc')]);
    assert.deepEqual(recorder.takeChunks(), [], 'handed over once');
    assert.equal(recorder.add(bytes('fgh')), false);
    assert.equal(recorder.size, 8);
    assert.equal(recorder.body(), undefined);
    await recorder.commit(head);
    assert.deepEqual(commits, [['tooLarge', head]]);
  });

  it('commits an empty body where the status or the method has none, whatever was written', async () => {
    for (const [method, status] of [
      ['HEAD', 200],
      ['POST', 204],
      ['POST', 205],
      ['POST', 304],
      ['POST', 103],
    ] as const) {
      const { decision, commits } = fakeDecision();
      const recorder = responseRecorder(decision, { maxResponseBytes: 2, method });
      recorder.add(bytes('far past the limit'));
      await recorder.commit({ status, headers: [] });
      assert.deepEqual(
        commits,
        [['commit', { status, headers: [], body: new Uint8Array(0) }]],
        `${method} ${status}`,
      );
    }
  });

  it('keeps an empty body of a 200 as an empty body, not as nothing', async () => {
    const { decision, commits } = fakeDecision();
    await responseRecorder(decision, { maxResponseBytes: 0, method: 'POST' }).commit(head);
    assert.deepEqual(commits, [['commit', { ...head, body: new Uint8Array(0) }]]);
  });
});
