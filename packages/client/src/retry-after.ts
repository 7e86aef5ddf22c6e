/**
 * `Retry-After` (RFC 9110 §10.2.3): `HTTP-date / delay-seconds`. An HTTP-date may come in any of the
 * three formats of §5.6.7, which recipients must all accept. `Date.parse` is not used: outside ISO 8601
 * its behaviour is implementation-defined (browsers and Node disagree, and it reads asctime dates in
 * local time), so the three grammars are matched here exactly.
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = MONTHS.join('|');
const DAY = 'Mon|Tue|Wed|Thu|Fri|Sat|Sun';
const DAY_LONG = 'Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';

/** `Sun, 06 Nov 1994 08:49:37 GMT`: the preferred format, and the only one senders may generate. */
const IMF_FIXDATE = new RegExp(`^(?:${DAY}), (\\d{2}) (${MONTH}) (\\d{4}) ${TIME} GMT$`);
/** `Sunday, 06-Nov-94 08:49:37 GMT`: obsolete RFC 850 format with a two-digit year. */
const RFC850_DATE = new RegExp(`^(?:${DAY_LONG}), (\\d{2})-(${MONTH})-(\\d{2}) ${TIME} GMT$`);
/** `Sun Nov  6 08:49:37 1994`: ANSI C asctime(), always UTC. */
const ASCTIME_DATE = new RegExp(`^(?:${DAY}) (${MONTH}) ([ \\d]\\d) ${TIME} (\\d{4})$`);

/**
 * Milliseconds to wait according to a `Retry-After` value, or `undefined` when there is none or it is
 * not valid (the caller then falls back to its own backoff). A date in the past means 0.
 * @example
 * parseRetryAfter('120', Date.now()); // 120_000
 * parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', Date.UTC(1994, 10, 6, 8, 49, 7)); // 30_000
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (typeof value !== 'string') return undefined;
  // Optional whitespace around a field value is not part of it (RFC 9110 §5.5).
  const text = value.replace(/^[ \t]+|[ \t]+$/g, '');
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = parseHttpDate(text, now);
  return date === undefined ? undefined : Math.max(0, date - now);
}

/** An HTTP-date as epoch ms, or `undefined` if `text` is none of the three formats. */
export function parseHttpDate(text: string, now: number): number | undefined {
  let m = IMF_FIXDATE.exec(text);
  if (m) return utc(Number(m[3]), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  m = RFC850_DATE.exec(text);
  if (m) return utc(fullYear(Number(m[3]), now), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  m = ASCTIME_DATE.exec(text);
  if (m) return utc(Number(m[6]), m[1]!, Number(m[2]!.trim()), m[3]!, m[4]!, m[5]!);
  return undefined;
}

/**
 * RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in the future is the most
 * recent past year with the same last two digits.
 */
function fullYear(twoDigits: number, now: number): number {
  const current = new Date(now).getUTCFullYear();
  const year = current - (current % 100) + twoDigits;
  return year > current + 50 ? year - 100 : year;
}

function utc(
  year: number,
  month: string,
  day: number,
  hour: string,
  minute: string,
  second: string,
): number | undefined {
  const h = Number(hour);
  const min = Number(minute);
  const s = Number(second);
  // 60 seconds is a leap second (the grammar allows it); Date.UTC rolls it into the next minute.
  if (h > 23 || min > 59 || s > 60 || day < 1) return undefined;
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0..99 as 1900..1999.
  const date = new Date(0);
  date.setUTCFullYear(year, MONTHS.indexOf(month), day);
  // It rolls 31 Feb into March: such a date is not a date.
  if (date.getUTCDate() !== day) return undefined;
  return date.setUTCHours(h, min, s, 0);
}
