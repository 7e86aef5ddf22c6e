/**
 * Durations and sizes as people write them in flags, environment variables and config files:
 * `500ms`, `2s`, `24h`; `64kb`, `1mb`. One parser each, so every source accepts the same forms.
 */

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

// Binary multiples: `1mb` is the engine's default maxResponseBytes, 1_048_576, not 1_000_000.
const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

const AMOUNT = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/;

/**
 * Milliseconds of a duration such as `500ms`, `1.5s`, `30s`, `5m`, `24h`, `7d`. A unit is required:
 * a bare `30` could mean seconds to one reader and milliseconds to the next. Throws a `RangeError`
 * that says what is accepted.
 * @example
 * parseDuration('24h'); // 86_400_000
 */
export function parseDuration(text: string): number {
  const match = AMOUNT.exec(text.trim().toLowerCase());
  const unit = match?.[2] ?? '';
  const factor = DURATION_UNITS[unit];
  if (!match || factor === undefined) {
    const hint = match && unit === '' ? ' (a unit is required)' : '';
    throw new RangeError(
      `"${text}" is not a duration${hint}: use a number and one of ms, s, m, h, d, e.g. 500ms, 30s, 24h`,
    );
  }
  const ms = Math.round(Number(match[1]) * factor);
  if (!Number.isSafeInteger(ms)) throw new RangeError(`"${text}" is too long a duration`);
  return ms;
}

/**
 * Bytes of a size such as `512b`, `64kb`, `1mb`, `1.5mb`; a bare number is bytes. Multiples of 1024.
 * @example
 * parseSize('1mb'); // 1_048_576
 */
export function parseSize(text: string): number {
  const match = AMOUNT.exec(text.trim().toLowerCase());
  const unit = match?.[2] || 'b';
  const factor = SIZE_UNITS[unit];
  if (!match || factor === undefined) {
    throw new RangeError(`"${text}" is not a size: use bytes or a number with kb, mb or gb, e.g. 64kb, 1mb`);
  }
  const bytes = Math.floor(Number(match[1]) * factor);
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`"${text}" is too large a size`);
  return bytes;
}

/** A duration for humans: the largest unit up to hours that divides it (`86400000` → `24h`). */
export function formatDuration(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    const factor = DURATION_UNITS[unit]!;
    if (ms >= factor && ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}

/** A size for humans: the largest unit that divides it (`1048576` → `1mb`). */
export function formatSize(bytes: number): string {
  for (const unit of ['gb', 'mb', 'kb'] as const) {
    const factor = SIZE_UNITS[unit]!;
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}b`;
}
