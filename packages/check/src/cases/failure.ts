/**
 * A failing first answer (`--fail-body`: a payload the API answers with a 4xx or 5xx), its retry,
 * then the corrected request under the same key. Storing the failure is the draft's reading ("the
 * result of the previously completed operation, success or an error", §2.6) and Stripe's once the
 * endpoint began; releasing the key so a retry runs again is a legitimate choice for failures a retry
 * can fix. What must not happen is a key left locked: one TTL for the lock and the replay leaves a
 * failed or crashed first blocking every retry for the whole retention (express-idempotency #32).
 */

import { marked, ok, replayOf, sameBytes } from '../compare.ts';
import { REFERENCES } from '../references.ts';
import { evidence } from '../report.ts';
import { type CaseRun, delta, Findings, sequence, skipped, status } from './outcome.ts';

export const failureCase: CaseRun = async (probe) => {
  const references = [REFERENCES.draftRetry, REFERENCES.stripeRetry, REFERENCES.stripeNotSaved];
  const template = probe.options.failBody;
  if (template === undefined)
    return skipped('give --fail-body (a body the API refuses) to run it', references);
  const key = probe.key('failure');
  const failing = probe.payload(template);
  const before = await probe.count();
  const first = await probe.send('failing first', { key, body: failing.text });
  const retries = await probe.settle('retry', { key, body: failing.text });
  const retry = retries.at(-1)!;
  const corrected = await probe.settle('corrected retry', { key, body: probe.payload().text });
  const fixed = corrected.at(-1)!;
  const ran = delta(before, await probe.count());
  const exchanges = [
    evidence(first, true),
    ...retries.map((e) => evidence(e)),
    ...corrected.map((e, i) => evidence(e, i === corrected.length - 1)),
  ];
  const found = new Findings();

  if (ok(first)) {
    return {
      verdict: 'warn',
      summary: `the --fail-body was accepted (${first.status}): give a body the API answers with a 4xx or 5xx`,
      exchanges,
      references,
    };
  }
  const stuck = retry.status === 409 && first.status !== 409;
  const stored = !stuck && replayOf(retry, first) && marked(retry);
  if (stuck) {
    found.add(
      'fail',
      `the key stays locked after the failed answer: ${sequence(retries)} over ${probe.options.waitMs} ms, so every retry is refused until the lock expires`,
    );
  } else if (stored) {
    // the pass summary
  } else if (ok(fixed)) {
    // A stored failure would have made the corrected request a reuse with another payload.
    found.add(
      'info',
      `not stored: the retry got ${sequence(retries)} again and the corrected request under the same key ran (${fixed.status})`,
    );
  } else if (sameBytes(retry, first)) {
    found.add(
      'info',
      `the retry got the same ${first.status} again, unmarked: run again, or replayed without Idempotent-Replayed`,
    );
  } else {
    found.add('info', `not stored: the retry ran again (${status(first)} → ${status(retry)})`);
  }
  if (fixed.status === 409 && !stuck) {
    found.add('fail', `the corrected request stays refused with 409 (${sequence(corrected)})`);
  } else if (fixed.status === 422) {
    found.note(
      'a corrected request under the same key is refused (422): after a stored failure, a client needs a new key',
    );
  } else if (stored || (!ok(fixed) && fixed.status !== 409)) {
    found.note(`the corrected request under the same key got ${status(fixed)}`);
  }
  return {
    ...found.result(`stored: the retry replays the ${first.status}`),
    exchanges,
    ...(ran === undefined ? {} : { executions: { count: ran, by: 'count-url' as const } }),
    references,
  };
};
