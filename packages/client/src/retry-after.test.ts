import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRetryAfter } from './retry-after.ts';

const NOW = Date.UTC(1994, 10, 6, 8, 49, 7); // 30 s before Sun, 06 Nov 1994 08:49:37 GMT

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => {
    assert.equal(parseRetryAfter('120', NOW), 120_000);
    assert.equal(parseRetryAfter('0', NOW), 0);
    assert.equal(parseRetryAfter(' 5\t', NOW), 5_000, 'surrounding whitespace is not part of the value');
    assert.equal(parseRetryAfter('007', NOW), 7_000);
  });

  it('reads the three HTTP-date formats of RFC 9110 §5.6.7, all in UTC', () => {
    assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', NOW), 30_000, 'IMF-fixdate');
    assert.equal(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', NOW), 30_000, 'RFC 850');
    assert.equal(parseRetryAfter('Sun Nov  6 08:49:37 1994', NOW), 30_000, 'asctime, space-padded day');
    assert.equal(parseRetryAfter('Sun Nov 16 08:49:37 1994', NOW), 30_000 + 10 * 86_400_000);
  });

  it('treats a date in the past as "now"', () => {
    assert.equal(parseRetryAfter('Sat, 05 Nov 1994 08:49:37 GMT', NOW), 0);
  });

  it('reads a two-digit year more than 50 years ahead as the past century', () => {
    const in2030 = Date.UTC(2030, 0, 1);
    // 2031 is ahead by one year: kept. 2099 would be 69 years ahead: it means 1999, a past date.
    assert.equal(parseRetryAfter('Wednesday, 01-Jan-31 00:00:00 GMT', in2030), 365 * 86_400_000);
    assert.equal(parseRetryAfter('Friday, 01-Jan-99 00:00:00 GMT', in2030), 0);
  });

  it('ignores garbage', () => {
    for (const value of [
      undefined,
      null,
      '',
      ' ',
      'soon',
      '-1',
      '1.5',
      '5s',
      '1, 2',
      '0x10',
      'Sun, 06 Nov 1994 08:49:37 PST',
      'Sun, 06 Nov 1994 08:49:37',
      'Sun, 31 Feb 1994 08:49:37 GMT',
      'Sun, 06 Nov 1994 24:00:00 GMT',
      'Sun, 6 Nov 1994 08:49:37 GMT',
      'sun, 06 nov 1994 08:49:37 gmt',
      '1994-11-06T08:49:37Z',
    ]) {
      assert.equal(parseRetryAfter(value, NOW), undefined, `${JSON.stringify(value)} is not a Retry-After`);
    }
  });
});
