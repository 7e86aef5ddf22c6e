/**
 * One key, two tenants: a key is unique per client, not across every client of the API (IETF draft
 * §5: look keys up by a composite of client and key; Stripe scopes keys to the account). Tenant B
 * sending the key tenant A used must run its own request; getting A's response leaks A's data.
 */

import { ok, replayOf } from '../compare.ts';
import { REFERENCES } from '../references.ts';
import { evidence } from '../report.ts';
import { type CaseRun, skipped, status } from './outcome.ts';

export const tenantsCase: CaseRun = async (probe, state) => {
  const references = [REFERENCES.draftSecurity, REFERENCES.draftUniqueness];
  if (!probe.options.tenant) {
    return skipped('give --tenant-header (with {{tenant}} in its value) to run it', references);
  }
  if (!probe.twoTenants) {
    return skipped('the --tenant-header value has no {{tenant}}: one tenant only', references);
  }
  if (state.replays === false) {
    return skipped(
      'the API did not replay a retry (the first case), so whether tenants share keys cannot be told',
      references,
    );
  }
  const key = probe.key('tenants');
  const payload = probe.payload();
  const a = await probe.send('tenant A', { key, body: payload.text, tenant: 'a' });
  const b = await probe.send('tenant B, same key', { key, body: payload.text, tenant: 'b' });
  const exchanges = [evidence(a), evidence(b, true)];
  const result = (verdict: 'pass' | 'warn' | 'fail', summary: string) => ({
    verdict,
    summary,
    exchanges,
    references,
  });
  if (!ok(a)) return result('warn', `tenant A's request was answered ${status(a)}: isolation not tested`);
  if (ok(b) && replayOf(b, a)) {
    return result(
      'fail',
      `tenant B got tenant A's response (${b.status}): keys are shared across tenants, and so are responses`,
    );
  }
  if (ok(b)) return result('pass', `tenant B's request ran on its own (${b.status})`);
  if (b.status === 401 || b.status === 403) {
    return result(
      'warn',
      `tenant B was refused (${b.status}): the API does not accept the second tenant, isolation not tested`,
    );
  }
  if (b.status === 409 || b.status === 422) {
    return result(
      'warn',
      `tenant B was refused with ${b.status}: one key space for every tenant, so one tenant's key blocks another's`,
    );
  }
  return result('warn', `tenant B got ${status(b)}`);
};
