// Settings: units, and the precedence flags > environment > config file > defaults.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  envName,
  loadProxyConfig,
  loadStoreConfig,
  PROXY_SETTINGS,
  type ProxyConfig,
  UsageError,
} from './config.ts';
import { describeStore, parseStoreSpec, type StoreSpec } from './store-spec.ts';
import { formatDuration, formatSize, parseDuration, parseSize } from './units.ts';

const dir = mkdtempSync(join(tmpdir(), 'oncely-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, settings: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof settings === 'string' ? settings : JSON.stringify(settings));
  return path;
}

const UPSTREAM = ['--upstream', 'http://127.0.0.1:3000'];

/** The resolved settings of `oncely proxy <args>`. */
function settings(args: string[], env: Record<string, string> = {}): ProxyConfig {
  const parsed = loadProxyConfig(args, env);
  assert.ok(!parsed.help);
  return parsed.config;
}

/** The store `oncely keys <args>` resolves. */
function storeOf(args: string[], env: Record<string, string> = {}): StoreSpec {
  const parsed = loadStoreConfig('keys', args, env, {});
  assert.ok(!parsed.help);
  return parsed.config.store;
}

function usageError(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof UsageError, `a UsageError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('durations and sizes', () => {
  it('parses the documented forms', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('2s'), 2000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('24h'), 86_400_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    assert.equal(parseDuration(' 30S '), 30_000);
    assert.equal(parseSize('64kb'), 65_536);
    assert.equal(parseSize('1mb'), 1_048_576);
    assert.equal(parseSize('1.5mb'), 1_572_864);
    assert.equal(parseSize('1MiB'), 1_048_576);
    assert.equal(parseSize('512'), 512);
    assert.equal(parseSize('512b'), 512);
  });

  it('refuses what is ambiguous or malformed, saying what is accepted', () => {
    assert.throws(() => parseDuration('30'), /a unit is required/);
    assert.throws(() => parseDuration('5x'), /ms, s, m, h, d/);
    assert.throws(() => parseDuration('-1s'), /not a duration/);
    assert.throws(() => parseDuration(''), /not a duration/);
    assert.throws(() => parseSize('1tb'), /kb, mb or gb/);
    assert.throws(() => parseSize('lots'), /not a size/);
  });

  it('formats back to the largest whole unit', () => {
    assert.equal(formatDuration(86_400_000), '24h');
    assert.equal(formatDuration(30_000), '30s');
    assert.equal(formatDuration(1500), '1500ms');
    assert.equal(formatSize(1_048_576), '1mb');
    assert.equal(formatSize(1000), '1000b');
  });
});

describe('store values', () => {
  it('parses every store form and keeps our parameters away from the driver', () => {
    assert.deepEqual(parseStoreSpec('memory'), { kind: 'memory' });
    assert.deepEqual(parseStoreSpec('sqlite:./oncely.db'), { kind: 'sqlite', path: './oncely.db' });
    assert.deepEqual(parseStoreSpec('sqlite:///var/lib/oncely.db'), {
      kind: 'sqlite',
      path: '/var/lib/oncely.db',
    });
    assert.deepEqual(parseStoreSpec('redis://127.0.0.1:6379/2?prefix=gw:'), {
      kind: 'redis',
      url: 'redis://127.0.0.1:6379/2',
      prefix: 'gw:',
    });
    assert.deepEqual(
      parseStoreSpec('postgres://u:p@db:5432/app?table=idem.records&namespace=gw&sslmode=require'),
      {
        kind: 'postgres',
        url: 'postgres://u:p@db:5432/app?sslmode=require',
        table: 'idem.records',
        namespace: 'gw',
      },
    );
    assert.throws(() => parseStoreSpec('mysql://x'), /memory, sqlite:<path>, redis:\/\//);
    assert.throws(() => parseStoreSpec('sqlite:'), /needs a file path/);
  });

  it('never shows a password', () => {
    assert.equal(describeStore(parseStoreSpec('postgres://app:hunter2@db/app')), 'postgres://app:***@db/app');
    assert.equal(
      describeStore(parseStoreSpec('redis://:hunter2@cache:6379?prefix=x:')),
      'redis://:***@cache:6379?prefix=x%3A',
    );
    assert.throws(
      () => parseStoreSpec('oracle://app:hunter2@db'),
      (error: Error) => !error.message.includes('hunter2'),
    );
  });
});

describe('proxy settings', () => {
  it('has every default of the docs when only --upstream is given', () => {
    const config = settings(UPSTREAM, {});
    assert.deepEqual(config, {
      upstream: 'http://127.0.0.1:3000/',
      host: '127.0.0.1',
      port: 8080,
      store: { kind: 'sqlite', path: './oncely.db' },
      ttlMs: 86_400_000,
      leaseMs: 30_000,
      scopeHeader: undefined,
      allowUnscoped: false,
      requireKey: false,
      methods: ['POST', 'PATCH'],
      concurrency: 'reject',
      maxWaitMs: 10_000,
      cache: 'success-only',
      maxBodyBytes: 1_048_576,
      maxResponseBytes: 1_048_576,
      upstreamTimeoutMs: 60_000,
      upstreamIdleTimeoutMs: 4_000,
      storeWaitMs: 10_000,
      adminPrefix: '/_oncely',
    });
  });

  it('takes the upstream idle timeout from the flag, ONCELY_UPSTREAM_IDLE_TIMEOUT or the file', () => {
    const flag = settings([...UPSTREAM, '--upstream-idle-timeout', '2s'], {});
    assert.equal(flag.upstreamIdleTimeoutMs, 2_000);
    const env = settings(UPSTREAM, { ONCELY_UPSTREAM_IDLE_TIMEOUT: '1500ms' });
    assert.equal(env.upstreamIdleTimeoutMs, 1_500);
    const config = file('idle.json', { upstream: 'http://x:1', 'upstream-idle-timeout': '3s' });
    assert.equal(settings(['--config', config], {}).upstreamIdleTimeoutMs, 3_000);
    assert.equal(
      settings(['--config', config], { ONCELY_UPSTREAM_IDLE_TIMEOUT: '1s' }).upstreamIdleTimeoutMs,
      1_000,
      'env beats file',
    );
  });

  it('takes a flag over the environment, the environment over the file, the file over the default', () => {
    const config = file('precedence.json', {
      upstream: 'http://file:1',
      port: 1111,
      lease: '11s',
      ttl: '11h',
      'scope-header': 'X-From-File',
      methods: ['post', 'put'],
      'require-key': true,
    });
    const env = {
      ONCELY_PORT: '2222',
      ONCELY_LEASE: '22s',
      ONCELY_UPSTREAM: 'http://env:2',
      ONCELY_REQUIRE_KEY: 'false',
    };
    const resolved = settings(['--config', config, '--port', '3333'], env);
    assert.equal(resolved.port, 3333, 'flag beats env and file');
    assert.equal(resolved.leaseMs, 22_000, 'env beats file');
    assert.equal(resolved.upstream, 'http://env:2/', 'env beats file');
    assert.equal(resolved.requireKey, false, 'env false beats file true');
    assert.equal(resolved.ttlMs, 11 * 3_600_000, 'file beats default');
    assert.equal(resolved.scopeHeader, 'x-from-file');
    assert.deepEqual(resolved.methods, ['POST', 'PUT']);
    assert.equal(resolved.host, '127.0.0.1', 'default when nobody sets it');

    const flagged = settings(['--config', config, '--no-require-key', '--lease', '1s'], {});
    assert.equal(flagged.requireKey, false, "--no-require-key turns off the file's true");
    assert.equal(flagged.leaseMs, 1000);
    assert.equal(
      settings([], { ONCELY_CONFIG: config }).upstream,
      'http://file:1/',
      'ONCELY_CONFIG finds the file',
    );
    assert.equal(settings([...UPSTREAM, '--require-key'], {}).requireKey, true);
  });

  it('treats an empty environment variable as unset', () => {
    const config = settings(UPSTREAM, { ONCELY_SCOPE_HEADER: '', ONCELY_PORT: '' });
    assert.equal(config.scopeHeader, undefined);
    assert.equal(config.port, 8080);
  });

  it('maps --cache default to success-only and takes the presets', () => {
    assert.equal(settings([...UPSTREAM, '--cache', 'default'], {}).cache, 'success-only');
    assert.equal(settings([...UPSTREAM, '--cache', 'stripe'], {}).cache, 'stripe');
    assert.equal(settings([...UPSTREAM], { ONCELY_CACHE: 'final-errors' }).cache, 'final-errors');
  });

  it('names the setting and the source of every invalid value', () => {
    usageError(() => loadProxyConfig([], {}), /--upstream is required/);
    usageError(() => loadProxyConfig([...UPSTREAM, '--lease', '5x'], {}), /^--lease: "5x" is not a duration/);
    usageError(
      () => loadProxyConfig(UPSTREAM, { ONCELY_TTL: '10' }),
      /^--ttl \(from ONCELY_TTL\): .*unit is required/,
    );
    usageError(
      () => loadProxyConfig(UPSTREAM, { ONCELY_REQUIRE_KEY: 'maybe' }),
      /--require-key \(from ONCELY_REQUIRE_KEY\): "maybe" is not true or false/,
    );
    usageError(() => loadProxyConfig([...UPSTREAM, '--port', '70000'], {}), /--port: "70000" is not a port/);
    usageError(
      () => loadProxyConfig([...UPSTREAM, '--concurrency', 'queue'], {}),
      /--concurrency: "queue" is not one of reject, wait/,
    );
    usageError(
      () => loadProxyConfig([...UPSTREAM, '--cache', 'always'], {}),
      /--cache: "always" is not one of default/,
    );
    usageError(
      () => loadProxyConfig([...UPSTREAM, '--store', 'mysql://db'], {}),
      /--store: "mysql:\/\/db" is not a store/,
    );
    usageError(
      () => loadProxyConfig([...UPSTREAM, '--max-body', 'huge'], {}),
      /--max-body: "huge" is not a size/,
    );
    usageError(
      () => loadProxyConfig([...UPSTREAM, '--methods', ','], {}),
      /--methods: name at least one method/,
    );
    usageError(
      () => loadProxyConfig([...UPSTREAM, '--scope-header', 'Idempotency-Key'], {}),
      /--scope-header: the scope cannot come from the key/,
    );
    usageError(
      () => loadProxyConfig([...UPSTREAM, '--ttl', '10s', '--lease', '30s'], {}),
      /--ttl: must be longer than --lease \(30s\)/,
    );
    usageError(() => loadProxyConfig(['--upstream', 'ftp://x'], {}), /--upstream: must be an http/);
    usageError(
      () => loadProxyConfig(UPSTREAM, { ONCELY_UPSTREAM_IDLE_TIMEOUT: '0ms' }),
      /^--upstream-idle-timeout \(from ONCELY_UPSTREAM_IDLE_TIMEOUT\): must be at least 1ms/,
    );
    usageError(
      () => loadProxyConfig([...UPSTREAM, '--upstream-idle-timeout', '4'], {}),
      /^--upstream-idle-timeout: .*unit is required/,
    );
    usageError(
      () => loadProxyConfig([...UPSTREAM, '--admin-prefix', 'oncely'], {}),
      /--admin-prefix: "oncely" is not a path/,
    );
    usageError(() => loadProxyConfig([...UPSTREAM, '--bogus'], {}), /Unknown option '--bogus'/);
    usageError(() => loadProxyConfig([...UPSTREAM, 'extra'], {}), /unexpected argument "extra"/);
    const bad = file('bad.json', { upstream: 'http://x:1', lease: '1 week' });
    usageError(
      () => loadProxyConfig(['--config', bad], {}),
      new RegExp(`--lease \\(from ${bad.replaceAll('/', '\\/')}\\)`),
    );
  });

  it('refuses config files that are missing, malformed, or hold unknown settings', () => {
    usageError(() => loadProxyConfig(['--config', join(dir, 'missing.json')], {}), /cannot read config file/);
    usageError(
      () => loadProxyConfig(['--config', file('broken.json', '{"upstream":')], {}),
      /is not valid JSON/,
    );
    usageError(() => loadProxyConfig(['--config', file('list.json', '[1]')], {}), /must hold a JSON object/);
    usageError(
      () =>
        loadProxyConfig(['--config', file('camel.json', { upstream: 'http://x:1', scopeHeader: 'x' })], {}),
      /unknown setting "scopeHeader" \(did you mean "scope-header"\?\)/,
    );
    usageError(
      () => loadProxyConfig(['--config', file('typed.json', { upstream: 'http://x:1', lease: 30000 })], {}),
      /--lease .*unit is required/,
    );
    usageError(
      () => loadProxyConfig(['--config', file('obj.json', { upstream: { url: 'x' } })], {}),
      /"upstream" has an invalid value/,
    );
  });

  it('resolves the store of `keys` the same way', () => {
    const config = file('store.json', { upstream: 'http://x:1', store: 'sqlite:/from/file.db' });
    assert.deepEqual(storeOf(['--config', config], {}), {
      kind: 'sqlite',
      path: '/from/file.db',
    });
    assert.deepEqual(storeOf(['--config', config], { ONCELY_STORE: 'memory' }), { kind: 'memory' });
    assert.deepEqual(storeOf(['--store', 'sqlite:x.db'], { ONCELY_STORE: 'memory' }), {
      kind: 'sqlite',
      path: 'x.db',
    });
  });

  it('gives every setting an environment variable named after its flag', () => {
    assert.equal(envName('scope-header'), 'ONCELY_SCOPE_HEADER');
    for (const setting of PROXY_SETTINGS) assert.match(envName(setting.name), /^ONCELY_[A-Z_]+$/);
  });
});
