/**
 * Retry, same key and body: the first request runs, the retry must get the first response back,
 * byte for byte (status, body, the headers a client reads), marked `Idempotent-Replayed: true`, and
 * the operation must not run again. This is the whole point of the key (IETF draft §2.6).
 */

import { bodyDifference, headerDifferences, marked, ok, replayOf, sameBytes } from '../compare.ts';
import { header } from '../exchange.ts';
import { REFERENCES } from '../references.ts';
import { evidence } from '../report.ts';
import { type CaseRun, delta, Findings, sequence, status } from './outcome.ts';

export const replayCase: CaseRun = async (probe, state) => {
  const references = [REFERENCES.draftRetry, REFERENCES.stripeRetry, REFERENCES.stripeReplayed];
  const key = probe.key('replay');
  const payload = probe.payload();
  const before = await probe.count();
  const first = await probe.send('first', { key, body: payload.text });
  probe.firstMs = first.ms;
  if (!ok(first)) {
    return {
      verdict: 'fail',
      summary: `the first request got ${status(first)}: the audit needs a request the API accepts (check the URL, --method, --body and --header)`,
      exchanges: [evidence(first, true)],
      references,
    };
  }
  state.first = first;
  const retries = await probe.settle('retry', { key, body: payload.text });
  const retry = retries.at(-1)!;
  const ran = delta(before, await probe.count());
  const found = new Findings();
  state.replays = retry.status !== 409 && replayOf(retry, first) && !(ran !== undefined && ran > 1);

  if (retries.length > 1 && retry.status !== 409) {
    found.add(
      'warn',
      `the retry right after the answer got ${sequence(retries)}: the response left before its outcome was stored, so a client that retries at once is told to wait`,
    );
  }
  if (retry.status === 409) {
    found.add(
      'fail',
      `the key stays in progress after its request was answered: ${sequence(retries)} over ${probe.options.waitMs} ms`,
    );
  } else if (ran !== undefined && ran > 1) {
    const empty =
      first.body.byteLength === 0
        ? ` (the first ${first.status} had an empty body, which is still a response to keep)`
        : '';
    found.add('fail', `the retry ran the operation again: the count went up by ${ran}, not 1${empty}`);
  }
  if (retry.status !== 409) {
    const diff = bodyDifference(first.body, retry.body);
    const what = [
      first.status === retry.status ? undefined : `status ${first.status} → ${retry.status}`,
      diff
        ? `body differs at byte ${diff.offset} (${diff.firstBytes} → ${diff.retryBytes} bytes): "${diff.first}" → "${diff.retry}"`
        : undefined,
    ]
      .filter(Boolean)
      .join('; ');
    if (!sameBytes(first, retry)) {
      if (marked(retry)) found.add('fail', `marked as a replay but not the first response: ${what}`);
      else if (ran === 1) found.add('fail', `the replay is not the first response byte for byte: ${what}`);
      else found.add('fail', `the retry ran again, with another answer: ${what}`);
    } else {
      for (const d of headerDifferences(first, retry)) {
        found.add(
          'warn',
          d.retry === undefined
            ? `the replay lacks the header ${d.name} (first: ${d.first})`
            : `the replay changed the header ${d.name}: ${d.first} → ${d.retry}`,
        );
      }
      const cookie = header(first, 'set-cookie');
      if (cookie !== undefined && header(retry, 'set-cookie') === cookie) {
        found.add(
          'warn',
          "the replay hands out the first response's Set-Cookie: whoever retries gets that session",
        );
      }
      if (!marked(retry)) {
        const empty = first.body.byteLength === 0 ? ' (an empty body is still a response to replay)' : '';
        found.add(
          'warn',
          ran === 1
            ? `replayed byte for byte, but without Idempotent-Replayed: true, so a client cannot tell a replay${empty}`
            : `the same ${first.status} and bytes again, without Idempotent-Replayed: a replay, or a second run that answered alike${empty}; --count-url tells them apart`,
        );
      }
    }
  }
  const result = found.result(
    `${retry.status} replayed byte for byte (${first.body.byteLength} body bytes), Idempotent-Replayed: true`,
  );
  return {
    ...result,
    exchanges: [
      evidence(first, true),
      ...retries.slice(0, -1).map((e) => evidence(e)),
      evidence(retry, true),
    ],
    ...(ran === undefined ? {} : { executions: { count: ran, by: 'count-url' as const } }),
    references,
  };
};
