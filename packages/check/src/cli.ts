/**
 * `oncely check <url>`: the flags, the confirmation before anything is sent, progress on stderr,
 * the report on stdout. The `oncely` CLI (@oncely/gateway) dispatches here and owns the help text.
 * Exit codes: 0 no case failed, 1 a case failed (or the audit could not run), 2 invalid usage.
 */

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { CheckError } from './errors.ts';
import { CASES, CHECK_DEFAULTS, type CheckOptions, MAX_CONCURRENCY, resolveOptions } from './options.ts';
import { planResolved } from './plan.ts';
import { renderReport } from './render.ts';
import type { CaseId } from './report.ts';
import { runCheck } from './run-check.ts';

/** One flag of `oncely check`: the parser and the help text both read this table. */
export interface CheckFlag {
  name: string;
  short?: string;
  /** The value's placeholder; none for a boolean flag. */
  value?: string;
  multiple?: boolean;
  description: string;
  default?: string;
}

export const CHECK_FLAGS: readonly CheckFlag[] = [
  { name: 'method', value: '<method>', description: 'The request method.', default: CHECK_DEFAULTS.method },
  {
    name: 'body',
    value: '<template>',
    description: 'The request body; {{unique}} becomes a value unique to each operation (each new key).',
  },
  { name: 'body-file', value: '<path>', description: 'Read the body template from a file.' },
  {
    name: 'other-body',
    value: '<template>',
    description: 'The payload of "same key, another body" [default: the first JSON number + 1].',
  },
  {
    name: 'fail-body',
    value: '<template>',
    description: 'A body the API answers with a 4xx or 5xx: runs the "failing first answer" case.',
  },
  {
    name: 'header',
    short: 'H',
    value: "'Name: value'",
    multiple: true,
    description: 'Send this header with every request (repeatable): authorization, content type.',
  },
  { name: 'key-header', value: '<name>', description: 'The key header.', default: CHECK_DEFAULTS.keyHeader },
  {
    name: 'key-format',
    value: 'token|sf-string',
    description: 'Send keys bare (abc) or as the draft\'s sf-string ("abc").',
    default: CHECK_DEFAULTS.keyFormat,
  },
  {
    name: 'tenant-header',
    value: "'Name: {{tenant}}'",
    description:
      'The header naming the tenant; {{tenant}} becomes a fresh test tenant (a second one for the isolation case).',
  },
  {
    name: 'concurrency',
    value: '<n>',
    description: `Concurrent duplicates of one key (at most ${MAX_CONCURRENCY}).`,
    default: String(CHECK_DEFAULTS.concurrency),
  },
  {
    name: 'count-url',
    value: '<url>',
    description: 'A URL on the same origin answering how many resources exist: counts executions.',
  },
  {
    name: 'id-field',
    value: '<field>',
    description: 'The JSON field that identifies a created resource (without --count-url).',
    default: CHECK_DEFAULTS.idField,
  },
  { name: 'timeout', value: '<duration>', description: 'Per request.', default: '30s' },
  {
    name: 'wait',
    value: '<duration>',
    description: 'How long a key may stay in progress after its request was answered or abandoned.',
    default: '10s',
  },
  {
    name: 'disconnect-after',
    value: '<duration>',
    description: "When the disconnecting client leaves [default: half the first request's time].",
  },
  {
    name: 'cases',
    value: '<list>',
    description: `Run only these cases (comma-separated): ${CASES.join(', ')}.`,
  },
  { name: 'json', description: 'Print the report as JSON.' },
  {
    name: 'yes',
    short: 'y',
    description: 'Do not ask before sending (required when stdin is not a terminal).',
  },
  { name: 'help', short: 'h', description: 'Show this help.' },
];

/** Where the command reads and writes. */
export interface CheckIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Where the confirmation is read. @default process.stdin */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Relative --body-file paths start here. @default process.cwd() */
  cwd?: string;
  /** The help text of `oncely check`. */
  help?: () => string;
}

class UsageError extends Error {}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m)$/;

function duration(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const match = DURATION.exec(text.trim());
  if (!match) throw new UsageError(`--${flag}: "${text}" is not a duration (500ms, 30s, 2m)`);
  return Math.round(Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm']);
}

function headerPair(text: string): [string, string] {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new UsageError(`--header: "${text}" is not 'Name: value'`);
  return [text.slice(0, colon).trim(), text.slice(colon + 1).trim()];
}

/** Parse the arguments of `oncely check` into runCheck options (without the callbacks). */
export function parseCheckArgs(
  args: readonly string[],
  cwd: string = process.cwd(),
): { help: true } | { help: false; options: CheckOptions; json: boolean; yes: boolean } {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...args],
      options: Object.fromEntries(
        CHECK_FLAGS.map((flag) => [
          flag.name,
          {
            type: flag.value ? ('string' as const) : ('boolean' as const),
            ...(flag.short ? { short: flag.short } : {}),
            ...(flag.multiple ? { multiple: true } : {}),
          },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (values.help) return { help: true };
  const string = (name: string): string | undefined => values[name] as string | undefined;
  const [url, ...extra] = parsed.positionals;
  if (url === undefined) throw new UsageError('check needs the URL to audit: oncely check <url> [options]');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}" (one URL per audit)`);
  if (string('body') !== undefined && string('body-file') !== undefined) {
    throw new UsageError('--body and --body-file: give one of them');
  }
  let body = string('body');
  const file = string('body-file');
  if (file !== undefined) {
    try {
      body = readFileSync(resolve(cwd, file), 'utf8');
    } catch (error) {
      throw new UsageError(`--body-file: cannot read ${file}: ${(error as Error).message}`);
    }
  }
  const concurrency = string('concurrency');
  const keyFormat = string('key-format');
  const options: CheckOptions = {
    url,
    ...(string('method') === undefined ? {} : { method: string('method') }),
    ...(body === undefined ? {} : { body }),
    ...(string('other-body') === undefined ? {} : { otherBody: string('other-body') }),
    ...(string('fail-body') === undefined ? {} : { failBody: string('fail-body') }),
    headers: ((values.header as string[] | undefined) ?? []).map(headerPair),
    ...(string('key-header') === undefined ? {} : { keyHeader: string('key-header') }),
    ...(keyFormat === undefined ? {} : { keyFormat: keyFormat as 'token' | 'sf-string' }),
    ...(string('tenant-header') === undefined ? {} : { tenantHeader: string('tenant-header') }),
    ...(concurrency === undefined
      ? {}
      : { concurrency: /^\d+$/.test(concurrency) ? Number(concurrency) : Number.NaN }),
    ...(string('count-url') === undefined ? {} : { countUrl: string('count-url') }),
    ...(string('id-field') === undefined ? {} : { idField: string('id-field') }),
  };
  const timeoutMs = duration('timeout', string('timeout'));
  const waitMs = duration('wait', string('wait'));
  const disconnectAfterMs = duration('disconnect-after', string('disconnect-after'));
  if (timeoutMs !== undefined) options.timeoutMs = timeoutMs;
  if (waitMs !== undefined) options.waitMs = waitMs;
  if (disconnectAfterMs !== undefined) options.disconnectAfterMs = disconnectAfterMs;
  const cases = string('cases');
  if (cases !== undefined) options.cases = cases.split(',').map((c) => c.trim()) as CaseId[];
  return { help: false, options, json: values.json === true, yes: values.yes === true };
}

async function confirm(io: CheckIo, question: string): Promise<boolean> {
  const stdin = io.stdin ?? process.stdin;
  const lines = createInterface({ input: stdin, terminal: false });
  try {
    io.stderr(question);
    const answer = await lines.question('');
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    lines.close();
    if ('pause' in stdin) stdin.pause();
  }
}

/**
 * Run `oncely check` with its arguments; resolves with the exit code.
 * @example
 * process.exitCode = await checkCommand(process.argv.slice(2), { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) });
 */
export async function checkCommand(args: readonly string[], io: CheckIo): Promise<number> {
  let parsed: ReturnType<typeof parseCheckArgs>;
  let plan: ReturnType<typeof planResolved>;
  try {
    parsed = parseCheckArgs(args, io.cwd);
    if (parsed.help) {
      io.stdout(io.help?.() ?? `Usage: oncely check <url> [options]\n`);
      return 0;
    }
    plan = planResolved(resolveOptions(parsed.options));
  } catch (error) {
    if (error instanceof UsageError || error instanceof CheckError) {
      io.stderr(`oncely check: ${error.message}\n`);
      io.stderr(`Run 'oncely check --help' for usage.\n`);
      return 2;
    }
    throw error;
  }
  const running = plan.cases.filter((c) => !c.skip);
  const skipping = plan.cases.filter((c) => c.skip);
  io.stderr(
    [
      `oncely check: ${plan.method} ${plan.url}`,
      `  ${running.length} cases, at most ${plan.requests.max} requests (${plan.requests.typical} unless keys stay in progress), to ${plan.origin} only`,
      `  up to ${plan.operations} operations that may create something (run it against a test tenant or test mode)`,
      ...(plan.headers.length > 0
        ? [`  headers sent with every request: ${plan.headers.join(', ')} (values not shown)`]
        : []),
      ...(skipping.length > 0
        ? [`  not run: ${skipping.map((c) => `${c.title} (${c.skip})`).join('; ')}`]
        : []),
      '',
    ].join('\n'),
  );
  if (!parsed.yes) {
    const stdin = io.stdin ?? process.stdin;
    if (!stdin.isTTY) {
      io.stderr(
        'oncely check: stdin is not a terminal, so nobody can confirm: add --yes to send these requests\n',
      );
      return 2;
    }
    if (!(await confirm(io, `Send them? [y/N] `))) {
      io.stderr('oncely check: not confirmed, nothing was sent\n');
      return 1;
    }
  }
  let report: Awaited<ReturnType<typeof runCheck>>;
  try {
    report = await runCheck({
      ...parsed.options,
      onProgress: (event) => {
        if (event.phase === 'start') io.stderr(`  [${event.index}/${event.total}] ${event.title} …`);
        else io.stderr(` ${event.verdict}\n`);
      },
    });
  } catch (error) {
    io.stderr(`\noncely check: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  io.stdout(parsed.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
  return report.ok ? 0 : 1;
}
