import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES, isOncelyError, OncelyError, type OncelyErrorCode, problemType } from './errors.ts';

const docs = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

// Compile-time half of the sync check: this list must name exactly the members of OncelyErrorCode.
const ALL = {
  ERR_ONCELY_KEY_MISSING: true,
  ERR_ONCELY_KEY_INVALID: true,
  ERR_ONCELY_KEY_REUSED: true,
  ERR_ONCELY_IN_PROGRESS: true,
  ERR_ONCELY_RESPONSE_NOT_STORED: true,
  ERR_ONCELY_STORE_UNAVAILABLE: true,
  ERR_ONCELY_BODY_AMBIGUOUS: true,
  ERR_ONCELY_SCOPE_MISSING: true,
  ERR_ONCELY_LEASE_LOST: true,
  ERR_ONCELY_EXECUTION_TIMEOUT: true,
  ERR_ONCELY_INVALID_OPTION: true,
  ERR_ONCELY_BODY_TOO_LARGE: true,
  ERR_ONCELY_UPSTREAM_UNAVAILABLE: true,
  ERR_ONCELY_UPSTREAM_TIMEOUT: true,
} satisfies Record<OncelyErrorCode, true>;

describe('error codes', () => {
  it('docs/errors.md has exactly the code table of the code', () => {
    const rows = [...docs.matchAll(/^\|\s*(ERR_ONCELY_[A-Z_]+)\s*\|\s*(\d+)\s*\|\s*(.+?)\s*\|$/gm)].map(
      ([, code, status, title]) => ({
        code,
        status: Number(status),
        title,
      }),
    );
    const table = Object.entries(ERROR_CODES).map(([code, { status, title }]) => ({ code, status, title }));
    assert.deepEqual(rows, table);
    assert.deepEqual(Object.keys(ERROR_CODES).sort(), Object.keys(ALL).sort());
  });

  it('has a docs section, the target of its problem type, for every code', () => {
    for (const code of Object.keys(ERROR_CODES) as OncelyErrorCode[]) {
      assert.match(docs, new RegExp(`^### ${code}$`, 'm'), `section for ${code}`);
      assert.ok(problemType(code).endsWith(`#${code.toLowerCase()}`));
    }
    const types = new Set(Object.keys(ERROR_CODES).map((c) => problemType(c as OncelyErrorCode)));
    assert.equal(types.size, Object.keys(ERROR_CODES).length, 'a distinct type per problem');
  });

  it('renders an RFC 9457 problem without leaking the cause', () => {
    const cause = new Error('password=hunter2');
    const error = new OncelyError('ERR_ONCELY_STORE_UNAVAILABLE', 'The store could not be reached.', {
      cause,
      retryAfter: 2,
    });
    assert.equal(error.cause, cause);
    assert.equal(error.status, 503);
    assert.equal(error.retryAfter, 2);
    assert.deepEqual(error.toProblem(), {
      type: problemType('ERR_ONCELY_STORE_UNAVAILABLE'),
      title: 'Idempotency store unavailable',
      status: 503,
      detail: 'The store could not be reached.',
      code: 'ERR_ONCELY_STORE_UNAVAILABLE',
    });
    assert.ok(!JSON.stringify(error.toProblem()).includes('hunter2'));
    assert.ok(isOncelyError(error));
    assert.ok(!isOncelyError(new Error('x')));
  });
});
