/**
 * `npx node --conditions=oncely:source bench/src/canonical-json.ts`: milliseconds to canonicalise a
 * 1 MiB JSON body, per body shape, for the scanner in @oncely/core against the JSON.parse-with-reviver
 * algorithm it replaced (copied below), which allocated and recursed per value. Reports the median
 * (and the scanner's fastest) of `--runs` calls after a warm-up; both must agree on every shape
 * before anything is timed. `~values` counts "[", "," and ":", roughly the values in the body.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { canonicalJson } from '@oncely/core';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '15' }, size: { type: 'string', default: String(1 << 20) } },
});
const RUNS = Number(args.runs);
const SIZE = Number(args.size);

/** The previous canonicalJson: JSON.parse with a reviver that keeps each number's source text. */
function reviverCanonicalJson(text: string): string | undefined {
  class NumberLexeme {
    readonly source: string;
    constructor(source: string) {
      this.source = source;
    }
  }
  const write = (value: unknown, out: string[]): void => {
    if (value instanceof NumberLexeme) {
      out.push(value.source);
    } else if (value === null || typeof value === 'string' || typeof value === 'boolean') {
      out.push(JSON.stringify(value));
    } else if (Array.isArray(value)) {
      out.push('[');
      for (let i = 0; i < value.length; i++) {
        if (i > 0) out.push(',');
        write(value[i], out);
      }
      out.push(']');
    } else {
      const object = value as Record<string, unknown>;
      const keys = Object.keys(object).sort();
      out.push('{');
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        if (i > 0) out.push(',');
        out.push(JSON.stringify(key), ':');
        write(object[key], out);
      }
      out.push('}');
    }
  };
  type Reviver = (this: unknown, key: string, value: unknown) => unknown;
  const reviver = (_key: string, value: unknown, context?: { source?: unknown }): unknown =>
    typeof value === 'number' && typeof context?.source === 'string'
      ? new NumberLexeme(context.source)
      : value;
  try {
    const out: string[] = [];
    write(JSON.parse(text, reviver as Reviver), out);
    return out.join('');
  } catch {
    return undefined;
  }
}

/** Repeats `item(i)` inside brackets, comma-separated, until the text would pass `SIZE` characters. */
function arrayOf(item: (i: number) => string): string {
  const parts: string[] = [];
  let length = 2;
  for (let i = 0; ; i++) {
    const next = item(i);
    if (length + next.length + 1 > SIZE) break;
    parts.push(next);
    length += next.length + 1;
  }
  return `[${parts.join(',')}]`;
}

/** A tree of objects `depth` levels deep, keys in reverse order, leaves mixing numbers and strings. */
function nested(depth: number, fanout: number): unknown {
  let counter = 0;
  const build = (level: number): unknown => {
    if (level === depth) return counter++ % 2 ? counter * 1.25 : `leaf-${counter}`;
    const node: Record<string, unknown> = {};
    for (let k = fanout - 1; k >= 0; k--) node[`key${level}_${k}`] = build(level + 1);
    return node;
  };
  return build(0);
}

const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 ';
const longString = (i: number, length: number): string =>
  JSON.stringify(Array.from({ length }, (_, k) => alphabet[(i * 7 + k) % alphabet.length]).join(''));

const shapes: Record<string, string> = {
  'numbers [1,2,...]': arrayOf((i) => String(i % 10)),
  'objects [{"a":1},...]': arrayOf((i) => `{"a":${i % 10}}`),
  'unsorted objects [{"b":1,"a":2},...]': arrayOf((i) => `{"b":${i % 10},"a":"x"}`),
  'nested object (depth 6, compact)': JSON.stringify(nested(6, 6)),
  'nested object (depth 6, pretty)': JSON.stringify(nested(6, 5), null, 2),
  'long strings (1 KiB each)': arrayOf((i) => longString(i, 1024)),
  'escaped strings ("\\u00e9\\n...")': arrayOf(
    (i) => `"caf\\u00e9 \\n ${'\\"x\\" '.repeat(i % 20)}\\ud83d\\ude00"`,
  ),
  // The worst case for copying: every level out of order, and what changes (the spaces) at the
  // bottom, carried up through all 1000 levels.
  '1000 levels, all unsorted, [1, 2, ...] inside': `${'{"z":0,"a":'.repeat(999)}${arrayOf((i) => ` ${i % 10}`)}${'}'.repeat(999)}`,
};

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Milliseconds per call, after a warm-up: the median and the fastest of `RUNS` calls. */
function time(canonicalise: (text: string) => string | undefined, text: string): [number, number] {
  for (let i = 0; i < 3; i++) canonicalise(text);
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    canonicalise(text);
    samples.push(performance.now() - start);
  }
  return [median(samples), Math.min(...samples)];
}

const rows: string[][] = [['shape', 'KiB', '~values', 'reviver ms', 'scanner ms', 'scanner min', 'speed-up']];
for (const [name, text] of Object.entries(shapes)) {
  assert.equal(canonicalJson(text), reviverCanonicalJson(text), `the two algorithms disagree on ${name}`);
  const values = (text.match(/[[,:]/g) ?? []).length;
  const [old] = time(reviverCanonicalJson, text);
  const [now, fastest] = time(canonicalJson, text);
  rows.push([
    name,
    (text.length / 1024).toFixed(0),
    String(values),
    old.toFixed(1),
    now.toFixed(1),
    fastest.toFixed(1),
    `${(old / now).toFixed(1)}x`,
  ]);
}

const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
for (const row of rows) {
  process.stdout.write(
    `${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')}\n`,
  );
}
