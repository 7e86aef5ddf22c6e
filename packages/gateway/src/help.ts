/**
 * The CLI's help texts. The proxy's settings come from the one settings table (config.ts), so a new
 * flag shows up here, with its environment variable and default, by being added there.
 */

import { CHECK_DOCS_URL, CHECK_FLAGS, type CheckFlag } from '@oncely/check';
import { envName, PROXY_SETTINGS, type SettingSpec, STORE_SETTING } from './config.ts';
import { STORE_FORMS } from './store-spec.ts';

/** Where the help texts point. */
export const DOCS = 'https://github.com/oncely/oncely/blob/main/docs/gateway.md';

/** `oncely --help`. */
export function mainHelp(version: string): string {
  return `oncely ${version}: Idempotency-Key handling in front of any HTTP service.

Usage: oncely <command> [options]

Commands:
  proxy        Run the gateway: a reverse proxy that records requests with an Idempotency-Key
               and replays their responses to retries.
  demo         Run the payments demo (examples/payments) on the embedded SQLite store.
  keys         Inspect a store: keys list | keys show <key> | keys purge --expired.
  check <url>  Audit any HTTP API's idempotency from the outside: replays, reused keys,
               concurrent duplicates, invalid keys, disconnects.
  help <cmd>   Show the help of a command (same as oncely <cmd> --help).

Options:
  -h, --help     Show this help.
  -v, --version  Show the version.

Examples:
  oncely proxy --upstream http://127.0.0.1:3000 --scope-header authorization
  oncely keys show order_123:pay:1 --scope "Bearer sk_live_42"
  oncely check http://127.0.0.1:3000/payments --header 'Authorization: Bearer sk_test_demo' \
    --body '{"amount":1999,"currency":"eur","customer":"cus_42"}'

Exit codes: 0 done, 1 failed (store or port unavailable, record not found, a check failed), 2 invalid usage.
Docs: ${DOCS}
`;
}

function settingLine(setting: SettingSpec): string[] {
  const flag =
    setting.type === 'boolean' ? `--${setting.name}` : `--${setting.name} ${setting.value ?? '<value>'}`;
  // A flag too long for the column still gets two spaces before its description.
  const lines = [`  ${flag.length < 30 ? flag.padEnd(30) : `${flag}  `}${setting.description}`];
  const facts = [`env ${envName(setting.name)}`];
  if (setting.default !== undefined) facts.push(`default ${setting.default}`);
  lines.push(`  ${''.padEnd(30)}[${facts.join(', ')}]`);
  return lines;
}

/** `oncely proxy --help`. */
export function proxyHelp(): string {
  return `Usage: oncely proxy --upstream <url> [options]

Runs a reverse proxy in front of <url>. Requests with a covered method (POST, PATCH) and an
Idempotency-Key run once: the upstream's response is kept and replayed, byte for byte, to every
retry with the same key. Everything else streams through untouched. The gateway serves
<admin-prefix>/livez (liveness, never asks the store), <admin-prefix>/readyz (= /healthz: the store
answers and can write) and <admin-prefix>/metrics itself, logs one JSON line per recorded request to
stdout, prints "listening on http://HOST:PORT" once ready, and stops gracefully on SIGTERM or SIGINT.

Settings (flag, else environment variable, else config file, else default):
${PROXY_SETTINGS.flatMap(settingLine).join('\n')}

Other options:
  --config <file>               JSON file of settings named like the flags, e.g.
                                {"upstream": "http://127.0.0.1:3000", "scope-header": "authorization"}
                                [env ONCELY_CONFIG]
  --no-require-key              Turn off a --require-key set by the environment or the file.
  --print-config                Print the resolved settings as JSON and exit (passwords hidden).
  -h, --help                    Show this help.

Durations: 500ms, 30s, 5m, 24h, 7d. Sizes: bytes, or 64kb, 1mb (multiples of 1024).
Stores: ${STORE_FORMS}

Example:
  oncely proxy --upstream http://127.0.0.1:3000 --port 8080 --store redis://127.0.0.1:6379 \\
    --scope-header authorization --require-key

Docs: ${DOCS}
`;
}

/** `oncely keys --help`. */
export function keysHelp(): string {
  return `Usage: oncely keys <list | show <key> | purge --expired> [options]

Inspects the store a gateway uses. The store is found like the proxy finds it:
--store, else ONCELY_STORE, else "store" in --config (or ONCELY_CONFIG), else ${STORE_SETTING.default}.

Subcommands:
  list                          Live records in the store's order (id, state, status, size).
  show <key>                    The record of one Idempotency-Key: state, times, response head.
  purge --expired               Delete records whose retention has ended.

Options:
${settingLine(STORE_SETTING).join('\n')}
  --config <file>               JSON settings file (the proxy's); only "store" is read.
  --scope <value>               show: the raw value of the proxy's --scope-header the client sent
                                (e.g. "Bearer sk_live_42"); hashed as the proxy hashes it.
  --body                        show: include the response body (UTF-8, else base64).
  --limit <n>                   list: at most n records [default 100].
  --json                        list: one JSON object per line.
  --expired                     purge: required; only expired records are ever purged.
  -h, --help                    Show this help.

list and purge go through the store's own list and purgeExpired: sqlite, redis and postgres have
them; memory is refused (its records live inside one gateway process). show works on every store.
Exit codes: 0 done, 1 failed or record not found, 2 invalid usage.

Docs: ${DOCS}
`;
}

/** `oncely demo --help`. */
export function demoHelp(): string {
  return `Usage: oncely demo [--port <port>] [--host <host>] [--dir <path>]

Runs the payments demo of the Oncely repository (examples/payments): a payments API on Fastify
with @oncely/fastify and the embedded SQLite store, charging a fake provider. It prints curl
commands to try: a payment, its replayed retry, and a reused key refused with 422.
Needs a checkout of the repository (the example is not published with the package).

Options:
  --port <port>                 Port to listen on [default 3000].
  --host <host>                 Interface to listen on [default 127.0.0.1].
  --dir <path>                  Where the demo's SQLite files go [default: the working directory].
  -h, --help                    Show this help.

Stop it with Ctrl-C.
Docs: ${DOCS}
`;
}

/** A flag of `oncely check`, its description wrapped at 100 columns beside it. */
function checkFlagLine(flag: CheckFlag): string {
  const name = `${flag.short ? `-${flag.short}, ` : ''}--${flag.name}${flag.value ? ` ${flag.value}` : ''}`;
  const text = `${flag.description}${flag.default === undefined ? '' : ` [default ${flag.default}]`}`;
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + word.length + 1 > 68) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  const column = ''.padEnd(32);
  // A flag too long for the column gets its own line.
  const head = name.length <= 28 ? [`  ${name.padEnd(30)}${lines.shift()}`] : [`  ${name}`];
  return [...head, ...lines.map((l) => `${column}${l}`)].join('\n');
}

/** `oncely check --help`; the flags come from `@oncely/check`'s table, the one its parser reads. */
export function checkHelp(): string {
  return `Usage: oncely check <url> [options]

Audits the idempotency of one endpoint from the outside, for any API (Oncely or not): a retry with
the same key and body (replayed byte for byte? marked Idempotent-Replayed?), the same key with
another body (422?), concurrent duplicates (how many ran?), a missing key, invalid keys (256
characters, non-ASCII, two header lines), a client that disconnects mid-request then retries, and
optionally a failing first answer (--fail-body) and another tenant (--tenant-header). Each case gets
pass, warn, fail, info or skip, with the evidence and the IETF draft, Stripe or RFC 9110 section it
rests on.

Before it sends anything it prints how many requests it will send, to <url>'s origin only, and asks
(--yes to skip; required when stdin is not a terminal). It never follows a redirect; --count-url must
be on the same origin. The requests create resources: use a test tenant or test mode. Progress goes
to stderr, the report to stdout.

Options:
${CHECK_FLAGS.map(checkFlagLine).join('\n')}

Templates: {{unique}} in a body becomes a value unique to each operation (digits only); the same key
always sends the same bytes. Durations: 500ms, 30s, 2m.

Example (the demo of npm start):
  oncely check http://127.0.0.1:3000/payments --header 'Authorization: Bearer sk_test_demo' \\
    --body '{"amount":1999,"currency":"eur","customer":"cus_42"}' --yes

Exit codes: 0 no case failed, 1 a case failed (or the audit could not run), 2 invalid usage.
Docs: ${CHECK_DOCS_URL}
`;
}
