/**
 * N concurrent duplicates: one key, one body, all sent at once, as a client with an aggressive
 * timeout or a load balancer's retry sends them. Exactly one may run; the others get a conflict
 * (409, IETF draft §2.6 and §2.7) or wait for the first and get its response. A lock taken with a
 * plain SET (no NX) or a check-then-insert lets several run: the double charge this exists to catch.
 */

import { identity, marked, ok } from '../compare.ts';
import { header } from '../exchange.ts';
import { REFERENCES } from '../references.ts';
import { aggregate, type Executions, evidence } from '../report.ts';
import { type CaseRun, delta, Findings, sequence, status } from './outcome.ts';

const BY = { id: 'resource ids', location: 'locations', body: 'response bodies' } as const;

export const concurrentCase: CaseRun = async (probe) => {
  const references = [REFERENCES.draftConcurrent, REFERENCES.draftInProgress, REFERENCES.stripeNotSaved];
  const n = probe.options.concurrency;
  const key = probe.key('concurrent');
  const payload = probe.payload();
  const before = await probe.count();
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) => probe.send(`duplicate ${i + 1}`, { key, body: payload.text })),
  );
  // Every duplicate has its answer, the one that ran included: count now, and after the retry.
  const middle = await probe.count();
  const later = await probe.settle('later retry', { key, body: payload.text });
  const last = later.at(-1)!;
  const after = await probe.count();
  const ran = delta(before, middle);
  const ranLater = delta(middle, after);
  const found = new Findings();

  // Without a count URL: distinct resources among the successful answers (a replay repeats one).
  const succeeded = replies.filter(ok);
  const idField = probe.options.idField;
  let by: keyof typeof BY = 'id';
  const ids = new Set<string>();
  for (const reply of succeeded) {
    const id = identity(reply, idField);
    by = id.by;
    ids.add(id.value);
  }
  const lastId = ok(last) ? identity(last, idField).value : undefined;
  const rerun =
    ranLater === undefined
      ? lastId !== undefined && ids.size > 0 && !ids.has(lastId) && !marked(last)
      : ranLater > 0 && ran !== 0;
  const executions: Executions =
    ran === undefined || ranLater === undefined
      ? { count: ids.size + (rerun || (ids.size === 0 && lastId !== undefined) ? 1 : 0), by: BY[by] }
      : { count: ran + ranLater, by: 'count-url' };

  const stats = aggregate(replies);
  // Successes first, then the most frequent.
  const outcome = Object.entries(stats.statuses)
    .sort(([a, x], [b, y]) => Number(b.startsWith('2')) - Number(a.startsWith('2')) || y - x)
    .map(([code, count]) => `${count}×${code}`)
    .join(', ');
  if (ids.size > 1) {
    found.add(
      'fail',
      `${ids.size} executions for one key (${outcome}): concurrent duplicates ran side by side, told apart by their ${BY[by]}`,
    );
  } else if (ran !== undefined && ran > 1) {
    found.add(
      'fail',
      `${ran} executions for one key (${outcome}), by the count URL: concurrent duplicates ran side by side`,
    );
  } else if (succeeded.length === 0 && !ok(last)) {
    found.add(
      'warn',
      `none of the ${n} duplicates succeeded (${outcome}) and the later retry got ${sequence(later)}`,
    );
  }
  if (rerun) {
    const why = ranLater === undefined ? 'another resource' : `the count went up by ${ranLater}`;
    found.add(
      'fail',
      `the retry after the duplicates ran again (${last.status}; ${why}): their one outcome was not kept`,
    );
  }
  const conflicts = replies.filter((r) => r.status === 409);
  const noRetryAfter = conflicts.filter((r) => header(r, 'retry-after') === undefined).length;
  if (noRetryAfter > 0)
    found.note(`${noRetryAfter} of the ${conflicts.length} 409s came without Retry-After`);
  const odd = replies.filter((r) => !ok(r) && r.status !== 409);
  if (odd.length > 0) {
    found.add(
      'warn',
      `${odd.length} duplicates got neither the answer nor a 409: ${[...new Set(odd.map(status))].join(', ')}`,
    );
  }
  const waited = succeeded.filter(marked).length;
  if (last.status === 409) {
    found.add(
      'fail',
      `the key stays in progress after the duplicates were answered: ${sequence(later)} over ${probe.options.waitMs} ms`,
    );
  } else if (!ok(last)) {
    found.add('warn', `the retry after the duplicates got ${status(last)}, not the one execution's response`);
  }
  if (by === 'body' && ran === undefined) {
    found.note(
      'executions counted by distinct response bodies (no id field, no Location): --count-url counts them exactly',
    );
  }
  const retryAfter = conflicts.length > 0 && noRetryAfter === 0 ? ', every 409 with Retry-After' : '';
  const summary =
    waited > 0
      ? `1 execution; ${waited} duplicates waited and got its response (${outcome}); the next retry replays it`
      : `1 execution (${outcome}${retryAfter}); the next retry replays it`;
  return {
    ...found.result(summary),
    exchanges: [
      ...replies
        .filter((r) => ok(r))
        .slice(0, 3)
        .map((e) => evidence(e)),
      ...later.map((e) => evidence(e)),
    ],
    aggregate: stats,
    executions,
    references,
  };
};
