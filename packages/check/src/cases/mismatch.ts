/**
 * Same key, another body: a client bug (one key for two payments) must be refused, 422 by the draft
 * (§2.2, §2.7). Replaying the first response to it tells the client its second payment went
 * through; running it breaks the key's promise. The first operation must still replay afterwards.
 */

import { marked, ok, replayOf } from '../compare.ts';
import { REFERENCES } from '../references.ts';
import { evidence } from '../report.ts';
import { otherBody } from '../template.ts';
import { type CaseRun, delta, Findings, skipped, status } from './outcome.ts';

export const mismatchCase: CaseRun = async (probe) => {
  const references = [REFERENCES.draftUniqueness, REFERENCES.draftReused, REFERENCES.stripeMismatch];
  const other = otherBody(probe.options.body, probe.options.otherBody);
  if (!other) {
    return skipped(
      'no other payload to send: the body has no JSON number to change and no {{unique}}; give --other-body',
      references,
    );
  }
  const key = probe.key('mismatch');
  const payload = probe.payload();
  const otherText = other.make(payload, probe.fresh);
  const before = await probe.count();
  const first = await probe.send('first', { key, body: payload.text });
  const reused = await probe.send('other body', { key, body: otherText });
  const middle = await probe.count();
  const again = await probe.send('first body again', { key, body: payload.text });
  const ranFirst = delta(before, middle);
  const ranAgain = delta(middle, await probe.count());
  const ran = ranFirst === undefined || ranAgain === undefined ? undefined : ranFirst + ranAgain;
  const exchanges = [evidence(first), evidence(reused, true), evidence(again)];
  const found = new Findings();
  found.note(`the other body: ${other.describe}`);

  if (!ok(first)) {
    return {
      verdict: 'warn',
      summary: `the first request was answered ${status(first)}, so the reuse was not tested`,
      exchanges,
      references,
    };
  }
  if (ok(reused)) {
    if (replayOf(reused, first)) {
      found.add(
        'fail',
        `silently replayed: the other payload got the first response (${reused.status}${marked(reused) ? ', Idempotent-Replayed' : ''}), so the client believes its second request went through`,
      );
    } else {
      found.add(
        'fail',
        `ran the other payload under the same key (${reused.status}): the key does not cover the payload`,
      );
    }
  } else if (reused.status === 422) {
    // the draft's answer
  } else if (reused.status === 409) {
    found.add(
      'warn',
      'refused with 409 (a conflict): the draft answers a reused key with 422, and clients retry a 409',
    );
  } else if (reused.status >= 400 && reused.status < 500) {
    found.add(
      'warn',
      `refused with ${reused.status}; the draft's status is 422 (Stripe answers 400 idempotency_error)`,
    );
  } else {
    found.add('warn', `answered ${status(reused)}: neither refused nor run, as far as a client can tell`);
  }
  if (ranFirst !== undefined && ranFirst > 1 && !ok(reused)) {
    found.add('fail', `refused, yet the count went up by ${ranFirst}: the other payload ran anyway`);
  }
  if (ranAgain !== undefined && ranAgain > 0) {
    found.add(
      'fail',
      `after the reuse, the first body ran again (the count went up by ${ranAgain}): its outcome was not kept`,
    );
  } else if (!replayOf(again, first)) {
    found.add(
      'fail',
      `after the reuse, the first body no longer replays (${status(again)}): the reuse replaced or dropped the first outcome`,
    );
  }
  return {
    ...found.result(`refused with 422; the first body still replays`),
    exchanges,
    ...(ran === undefined ? {} : { executions: { count: ran, by: 'count-url' as const } }),
    references,
  };
};
