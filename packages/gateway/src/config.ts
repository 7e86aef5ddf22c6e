/**
 * Configuration of `oncely proxy` (and the store of `oncely keys`): every setting has one name,
 * used as the flag (`--scope-header`), the environment variable (`ONCELY_SCOPE_HEADER`) and the key
 * in the config file (`"scope-header"`). Precedence: flags, then environment, then the file, then the
 * defaults. Every value is checked before anything starts; a bad one is a `UsageError` (exit code 2)
 * that names the setting and where the value came from.
 */

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { DEFAULTS } from '@oncely/core';
import {
  adminPrefixRule,
  GATEWAY_DEFAULTS,
  positiveMsRule,
  scopeHeaderRule,
  TOKEN,
} from './gateway-options.ts';
import { parseStoreSpec, type StoreSpec } from './store-spec.ts';
import { formatDuration, formatSize, parseDuration, parseSize } from './units.ts';

/** A mistake in how the CLI was called or configured. The CLI prints it and exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** The command whose `--help` to point at, if any. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}

/** One setting of the proxy, as flag, environment variable and config-file key. */
export interface SettingSpec {
  name: string;
  /** Flags are strings, except switches. */
  type: 'string' | 'boolean';
  /** Placeholder in help, e.g. `<url>`. */
  value?: string;
  /** The default as written on the command line; `undefined` when there is none. */
  default?: string;
  description: string;
}

/** `--cache default` means this preset; see docs/gateway.md. */
export const DEFAULT_CACHE = 'success-only';

/** Every setting of `oncely proxy`, in help order. The one table flags, env, the file and help use. */
export const PROXY_SETTINGS: readonly SettingSpec[] = [
  {
    name: 'upstream',
    type: 'string',
    value: '<url>',
    description: 'Base URL of the service behind the gateway (required).',
  },
  {
    name: 'host',
    type: 'string',
    value: '<host>',
    default: '127.0.0.1',
    description: 'Interface to listen on.',
  },
  {
    name: 'port',
    type: 'string',
    value: '<port>',
    default: '8080',
    description: 'Port to listen on (0: any free port).',
  },
  {
    name: 'store',
    type: 'string',
    value: '<store>',
    default: 'sqlite:./oncely.db',
    description: 'Where records live: memory | sqlite:<path> | redis://... | postgres://...',
  },
  {
    name: 'ttl',
    type: 'string',
    value: '<duration>',
    default: formatDuration(DEFAULTS.ttlMs),
    description: 'How long a completed key is replayed.',
  },
  {
    name: 'lease',
    type: 'string',
    value: '<duration>',
    default: formatDuration(DEFAULTS.leaseMs),
    description: 'How long a crashed gateway can hold a key before a retry may take it over.',
  },
  {
    name: 'scope-header',
    type: 'string',
    value: '<name>',
    description:
      'Header naming the tenant (e.g. authorization); hashed, never stored. Default: none, one shared key space.',
  },
  {
    name: 'allow-unscoped',
    type: 'boolean',
    default: 'false',
    description:
      'With --scope-header: let requests without it share one key space instead of refusing them (400).',
  },
  {
    name: 'require-key',
    type: 'boolean',
    default: 'false',
    description: 'Refuse covered requests without Idempotency-Key (400).',
  },
  {
    name: 'methods',
    type: 'string',
    value: '<list>',
    default: 'POST,PATCH',
    description: 'Methods that are recorded; others stream through.',
  },
  {
    name: 'concurrency',
    type: 'string',
    value: 'reject|wait',
    default: DEFAULTS.concurrency,
    description: 'A duplicate of a running request: 409 at once, or wait for its response.',
  },
  {
    name: 'max-wait',
    type: 'string',
    value: '<duration>',
    default: formatDuration(DEFAULTS.maxWaitMs),
    description: 'With --concurrency wait: longest wait before the 409.',
  },
  {
    name: 'cache',
    type: 'string',
    value: '<policy>',
    default: 'default',
    description: `Responses kept for replay: default (= ${DEFAULT_CACHE}: 2xx) | success-only | final-errors | stripe (all).`,
  },
  {
    name: 'max-body',
    type: 'string',
    value: '<size>',
    default: '1mb',
    description: 'Largest request body of a recorded request; larger gets 413 before anything runs.',
  },
  {
    name: 'max-response',
    type: 'string',
    value: '<size>',
    default: formatSize(DEFAULTS.maxResponseBytes),
    description: 'Largest response kept whole; larger is relayed, kept without body (retries get 409).',
  },
  {
    name: 'upstream-timeout',
    type: 'string',
    value: '<duration>',
    default: '60s',
    description: 'Longest silence from the upstream before 504 (and the key released).',
  },
  {
    name: 'upstream-idle-timeout',
    type: 'string',
    value: '<duration>',
    default: formatDuration(GATEWAY_DEFAULTS.upstreamIdleTimeoutMs),
    description: "Close idle upstream connections after this; keep it below the upstream's own.",
  },
  {
    name: 'store-wait',
    type: 'string',
    value: '<duration>',
    default: '10s',
    description: 'At start-up, how long to wait for the store to answer before exiting with 1.',
  },
  {
    name: 'admin-prefix',
    type: 'string',
    value: '<path>',
    default: '/_oncely',
    description: 'Where the gateway serves /healthz and /metrics itself ("" or / for the root).',
  },
];

/** The store setting alone, for `oncely keys`. */
export const STORE_SETTING = PROXY_SETTINGS.find((s) => s.name === 'store')!;

/** The environment variable of a setting: `scope-header` → `ONCELY_SCOPE_HEADER`. */
export function envName(setting: string): string {
  return `ONCELY_${setting.toUpperCase().replaceAll('-', '_')}`;
}

/** The resolved configuration of `oncely proxy`. */
export interface ProxyConfig {
  upstream: string;
  host: string;
  port: number;
  store: StoreSpec;
  ttlMs: number;
  leaseMs: number;
  scopeHeader: string | undefined;
  allowUnscoped: boolean;
  requireKey: boolean;
  methods: string[];
  concurrency: 'reject' | 'wait';
  maxWaitMs: number;
  cache: 'success-only' | 'final-errors' | 'stripe';
  maxBodyBytes: number;
  maxResponseBytes: number;
  upstreamTimeoutMs: number;
  upstreamIdleTimeoutMs: number;
  storeWaitMs: number;
  adminPrefix: string;
}

/** Where a raw value came from, for error messages. */
type Source =
  | { kind: 'flag' }
  | { kind: 'env'; name: string }
  | { kind: 'file'; path: string }
  | { kind: 'default' };

interface Raw {
  value: string | boolean;
  source: Source;
}

/**
 * What a command line gave: `help` alone when help was asked for (nothing else is checked then), or
 * the resolved settings, the positional arguments and the command's own flags.
 */
export type Parsed<T> =
  | { help: true }
  | {
      help: false;
      config: T;
      positionals: string[];
      /** CLI-only switches and values (`print-config`, `json`, …). */
      flags: Record<string, string | boolean | undefined>;
    };

/** CLI-only options of a command, beside its settings. */
export type ExtraOptions = ParseArgsOptionsConfig;

/**
 * Collect the raw value of each setting: flag, else `ONCELY_*`, else the config file, else default.
 * `settings` are the ones this command takes; the config file may hold any proxy setting (one file
 * serves `proxy` and `keys`), but nothing else.
 */
function collect(
  command: string,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  settings: readonly SettingSpec[],
  extra: ExtraOptions,
  cwd: string,
): { raw: Map<string, Raw>; positionals: string[]; flags: Record<string, string | boolean | undefined> } {
  const options: ParseArgsOptionsConfig = {
    config: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    ...extra,
  };
  for (const setting of settings) options[setting.name] = { type: setting.type };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...args],
      options,
      allowPositionals: true,
      allowNegative: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify a positional.*$/s, '.'), command);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;

  const raw = new Map<string, Raw>();
  for (const setting of settings) {
    const flag = values[setting.name];
    if (flag !== undefined) raw.set(setting.name, { value: flag, source: { kind: 'flag' } });
  }
  for (const setting of settings) {
    const name = envName(setting.name);
    const value = env[name];
    // An empty variable counts as unset: `ONCELY_SCOPE_HEADER=` in a unit file is no header name.
    if (!raw.has(setting.name) && value !== undefined && value !== '') {
      raw.set(setting.name, { value, source: { kind: 'env', name } });
    }
  }
  const configPath = (values.config as string | undefined) ?? (env.ONCELY_CONFIG || undefined);
  if (configPath !== undefined) {
    for (const [name, value] of readConfigFile(configPath, command, cwd)) {
      if (!raw.has(name) && settings.some((s) => s.name === name)) {
        raw.set(name, { value, source: { kind: 'file', path: configPath } });
      }
    }
  }
  for (const setting of settings) {
    if (!raw.has(setting.name) && setting.default !== undefined) {
      raw.set(setting.name, {
        value: setting.type === 'boolean' ? setting.default === 'true' : setting.default,
        source: { kind: 'default' },
      });
    }
  }
  const flags: Record<string, string | boolean | undefined> = {};
  for (const name of Object.keys(extra)) flags[name] = values[name];
  flags.help = values.help;
  return { raw, positionals: parsed.positionals, flags };
}

/** The config file's settings as raw values. Keys are the flag names; values are strings, numbers, booleans or (methods) a list. */
function readConfigFile(path: string, command: string, cwd: string): Map<string, string | boolean> {
  let text: string;
  try {
    text = readFileSync(resolve(cwd, path), 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read config file ${path}: ${(error as Error).message}`, command);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`config file ${path} is not valid JSON: ${(error as Error).message}`, command);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new UsageError(
      `config file ${path} must hold a JSON object of settings, e.g. {"upstream": "http://127.0.0.1:3000"}`,
      command,
    );
  }
  const out = new Map<string, string | boolean>();
  for (const [key, value] of Object.entries(data)) {
    const setting = PROXY_SETTINGS.find((s) => s.name === key);
    if (!setting) {
      const kebab = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      const hint = PROXY_SETTINGS.some((s) => s.name === kebab) ? ` (did you mean "${kebab}"?)` : '';
      throw new UsageError(
        `config file ${path}: unknown setting "${key}"${hint}; settings are ${PROXY_SETTINGS.map((s) => s.name).join(', ')}`,
        command,
      );
    }
    if (setting.type === 'boolean' && typeof value === 'boolean') out.set(key, value);
    else if (typeof value === 'string') out.set(key, value);
    else if (typeof value === 'number' && setting.type === 'string') out.set(key, String(value));
    else if (key === 'methods' && Array.isArray(value) && value.every((m) => typeof m === 'string')) {
      out.set(key, value.join(','));
    } else {
      throw new UsageError(
        `config file ${path}: "${key}" has an invalid value ${JSON.stringify(value)}`,
        command,
      );
    }
  }
  return out;
}

function where(source: Source): string {
  switch (source.kind) {
    case 'flag':
      return '';
    case 'env':
      return ` (from ${source.name})`;
    case 'file':
      return ` (from ${source.path})`;
    case 'default':
      return ' (the default)';
  }
}

/** Turn each raw value into its typed form, or a `UsageError` naming the setting and the source. */
class Reader {
  readonly raw: Map<string, Raw>;
  readonly command: string;
  constructor(raw: Map<string, Raw>, command: string) {
    this.raw = raw;
    this.command = command;
  }

  fail(name: string, message: string): never {
    const raw = this.raw.get(name);
    throw new UsageError(`--${name}${raw ? where(raw.source) : ''}: ${message}`, this.command);
  }

  string(name: string): string | undefined {
    const raw = this.raw.get(name);
    if (raw === undefined) return undefined;
    if (typeof raw.value !== 'string') this.fail(name, 'needs a value');
    return raw.value;
  }

  boolean(name: string): boolean {
    const raw = this.raw.get(name);
    if (raw === undefined) return false;
    if (typeof raw.value === 'boolean') return raw.value;
    const text = raw.value.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(text)) return true;
    if (['false', '0', 'no', 'off'].includes(text)) return false;
    this.fail(name, `"${raw.value}" is not true or false`);
  }

  parsed<T>(name: string, parse: (text: string) => T): T | undefined {
    const text = this.string(name);
    if (text === undefined) return undefined;
    try {
      return parse(text);
    } catch (error) {
      this.fail(name, (error as Error).message);
    }
  }
}

function oneOf<T extends string>(allowed: readonly T[]): (text: string) => T {
  return (text) => {
    const value = text.trim().toLowerCase() as T;
    if (!allowed.includes(value)) throw new RangeError(`"${text}" is not one of ${allowed.join(', ')}`);
    return value;
  };
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || port > 65_535)
    throw new RangeError(`"${text}" is not a port (0 to 65535)`);
  return port;
}

function parseMethods(text: string): string[] {
  const methods = text
    .split(',')
    .map((m) => m.trim().toUpperCase())
    .filter((m) => m !== '');
  if (methods.length === 0) throw new RangeError('name at least one method, e.g. POST,PATCH');
  for (const method of methods)
    if (!TOKEN.test(method)) throw new RangeError(`"${method}" is not a method name`);
  return [...new Set(methods)];
}

function parseUpstream(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RangeError(`"${text}" is not a URL, e.g. http://127.0.0.1:3000`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new RangeError('must be an http:// or https:// URL');
  if (url.username !== '' || url.password !== '') throw new RangeError('must not contain credentials');
  if (url.search !== '' || url.hash !== '') throw new RangeError('must not have a query string or fragment');
  return url.href;
}

// The gateway's own rules (gateway-options.ts), applied to the text as given: `createGateway` and
// the flags cannot disagree on what a header name, a prefix or a usable timeout is.
const parseHeaderName = (text: string): string => scopeHeaderRule(text.trim());
const parsePrefix = (text: string): string => adminPrefixRule(text.trim());
const parseTimeout = (text: string): number => positiveMsRule(parseDuration(text));

/**
 * Resolve `oncely proxy`'s settings from its arguments, the environment and the config file.
 * @example
 * const { config } = loadProxyConfig(['--upstream', 'http://127.0.0.1:3000'], process.env);
 */
export function loadProxyConfig(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  extra: ExtraOptions = {},
  cwd: string = process.cwd(),
): Parsed<ProxyConfig> {
  const { raw, positionals, flags } = collect('proxy', args, env, PROXY_SETTINGS, extra, cwd);
  if (flags.help) return { help: true };
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, 'proxy');
  const read = new Reader(raw, 'proxy');

  const upstream = read.parsed('upstream', parseUpstream);
  if (upstream === undefined) {
    throw new UsageError('--upstream is required (or ONCELY_UPSTREAM, or "upstream" in --config)', 'proxy');
  }
  const host = read.string('host')!.trim();
  if (host === '') read.fail('host', 'must not be empty');
  const leaseMs = read.parsed('lease', (text) => {
    const ms = parseDuration(text);
    if (ms < 30) throw new RangeError('must be at least 30ms');
    return ms;
  })!;
  const ttlMs = read.parsed('ttl', parseDuration)!;
  if (ttlMs <= leaseMs) read.fail('ttl', `must be longer than --lease (${formatDuration(leaseMs)})`);
  const cache = read.parsed('cache', oneOf(['default', 'success-only', 'final-errors', 'stripe'] as const))!;
  const config: ProxyConfig = {
    upstream,
    host,
    port: read.parsed('port', parsePort)!,
    store: read.parsed('store', parseStoreSpec)!,
    ttlMs,
    leaseMs,
    scopeHeader: read.parsed('scope-header', parseHeaderName),
    allowUnscoped: read.boolean('allow-unscoped'),
    requireKey: read.boolean('require-key'),
    methods: read.parsed('methods', parseMethods)!,
    concurrency: read.parsed('concurrency', oneOf(['reject', 'wait'] as const))!,
    maxWaitMs: read.parsed('max-wait', parseDuration)!,
    cache: cache === 'default' ? DEFAULT_CACHE : cache,
    maxBodyBytes: read.parsed('max-body', parseSize)!,
    maxResponseBytes: read.parsed('max-response', parseSize)!,
    upstreamTimeoutMs: read.parsed('upstream-timeout', parseTimeout)!,
    upstreamIdleTimeoutMs: read.parsed('upstream-idle-timeout', parseTimeout)!,
    storeWaitMs: read.parsed('store-wait', parseTimeout)!,
    adminPrefix: read.parsed('admin-prefix', parsePrefix)!,
  };
  return { help: false, config, positionals, flags };
}

/**
 * Resolve the store of `oncely keys` the same way (`--store`, `ONCELY_STORE`, `"store"` in the
 * config file, `sqlite:./oncely.db`), plus the command's own flags.
 */
export function loadStoreConfig(
  command: string,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  extra: ExtraOptions,
  cwd: string = process.cwd(),
): Parsed<{ store: StoreSpec }> {
  const { raw, positionals, flags } = collect(command, args, env, [STORE_SETTING], extra, cwd);
  if (flags.help) return { help: true };
  const read = new Reader(raw, command);
  return { help: false, config: { store: read.parsed('store', parseStoreSpec)! }, positionals, flags };
}
