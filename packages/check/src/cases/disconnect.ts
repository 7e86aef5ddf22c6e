/**
 * A client that gives up mid-request, then retries with the same key: the moment RFC 9110 §9.2.2
 * worries about (did it run?) and the key exists for. The request is sent whole; the connection is
 * destroyed while the API works on it. The retry must not run the operation a second time: it gets
 * a 409 while the first still runs, then the first's response; or, if the API dropped the abandoned
 * request before it ran, the retry runs it once.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { marked, ok } from '../compare.ts';
import { REFERENCES } from '../references.ts';
import { evidence } from '../report.ts';
import { type CaseRun, delta, Findings, sequence, status } from './outcome.ts';

/** Without --disconnect-after: half the first request's time, within these bounds. */
const MIN_MS = 5;
const MAX_MS = 5000;

export const disconnectCase: CaseRun = async (probe) => {
  const references = [REFERENCES.rfc9110Retry, REFERENCES.draftInProgress, REFERENCES.draftRetry];
  const after =
    probe.options.disconnectAfterMs ??
    Math.min(MAX_MS, Math.max(MIN_MS, Math.round((probe.firstMs ?? 100) / 2)));
  const key = probe.key('disconnect');
  const payload = probe.payload();
  const before = await probe.count();
  const abandoned = probe.open({ key, body: payload.text });
  await sleep(after);
  const answeredFirst = abandoned.abandon();
  await sleep(20); // let the server see the connection close before the retry lands
  const retries = await probe.settle('retry', { key, body: payload.text });
  const last = retries.at(-1)!;
  const ran = delta(before, await probe.count());
  const found = new Findings();
  const seen = sequence(retries);
  found.note(`the client went away ${after} ms after sending the request`);

  if (answeredFirst) {
    found.add(
      'info',
      `the API answered within ${after} ms, before the client went away: no disconnect mid-request to test (give a smaller --disconnect-after)`,
    );
  }
  if (ran !== undefined && ran > 1) {
    found.add('fail', `ran twice: the count went up by ${ran} for one key (the retry saw ${seen})`);
  } else if (last.status === 409) {
    found.add(
      'warn',
      `still in progress ${probe.options.waitMs} ms later (${seen}): the abandoned request holds the key until its lock expires`,
    );
  } else if (!ok(last)) {
    found.add('warn', `the retry got ${status(last)} (${seen})`);
  } else if (!marked(last) && ran === undefined) {
    found.add(
      'warn',
      `the retry ran (${seen}, no Idempotent-Replayed): whether the abandoned request ran too cannot be told without --count-url`,
    );
  }
  const summary = marked(last)
    ? `kept: the retry saw ${seen} (the replay of the first run)${ran === undefined ? '' : `; ${ran} execution`}`
    : `the abandoned request did not run; the retry ran it once (${seen})`;
  return {
    ...found.result(summary),
    exchanges: retries.map((e, i) => evidence(e, i === retries.length - 1)),
    ...(ran === undefined ? {} : { executions: { count: ran, by: 'count-url' as const } }),
    references,
  };
};
