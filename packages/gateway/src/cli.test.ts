// The `oncely` command as a process: help, exit codes, settings precedence end to end, `keys`, `demo`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { memoryStore, recordId, type Store } from '@oncely/core';
import { sqliteStore } from '@oncely/sqlite';
import { envName, PROXY_SETTINGS } from './config.ts';
import { listKeys, purgeExpiredKeys } from './keys.ts';
import { scopeOf } from './scope.ts';
import type { OpenedStore } from './store-from-url.ts';
import { post } from './test-client.ts';
import { runCli, startGateway, startGatewayProcess } from './test-gateway.ts';

const dir = mkdtempSync(join(tmpdir(), 'oncely-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('oncely help', () => {
  it("lists the commands, and says how to get each one's help", { timeout: 30_000 }, async () => {
    for (const args of [['--help'], ['-h'], [], ['help']]) {
      const { code, stdout, stderr } = await runCli(args);
      assert.equal(code, 0, `oncely ${args.join(' ')}: ${stderr}`);
      for (const command of ['proxy', 'demo', 'keys', 'help <cmd>'])
        assert.match(stdout, new RegExp(`^  ${command}\\s`, 'm'));
      assert.match(stdout, /Exit codes: 0 done, 1 failed .*, 2 invalid usage/);
    }
  });

  it('documents every proxy setting with its flag, environment variable and default', {
    timeout: 30_000,
  }, async () => {
    const { code, stdout } = await runCli(['proxy', '--help']);
    assert.equal(code, 0);
    for (const setting of PROXY_SETTINGS) {
      const flag = setting.type === 'boolean' ? `--${setting.name}` : `--${setting.name} ${setting.value}`;
      assert.ok(stdout.includes(`  ${flag} `), `help shows ${flag}`);
      const facts =
        setting.default === undefined
          ? `[env ${envName(setting.name)}]`
          : `[env ${envName(setting.name)}, default ${setting.default}]`;
      assert.ok(stdout.includes(facts), `help shows ${facts}`);
    }
    for (const option of [
      '--config <file>',
      '--no-require-key',
      '--print-config',
      'ONCELY_CONFIG',
      'Durations:',
      'Sizes:',
    ]) {
      assert.ok(stdout.includes(option), `help mentions ${option}`);
    }
    assert.equal((await runCli(['help', 'proxy'])).stdout, stdout, 'oncely help proxy is the same text');
  });

  it('has help for keys and demo', { timeout: 30_000 }, async () => {
    const keys = await runCli(['keys', '--help']);
    assert.equal(keys.code, 0);
    for (const text of [
      'list',
      'show <key>',
      'purge --expired',
      '--store <store>',
      'ONCELY_STORE',
      '--scope <value>',
      '--body',
      '--limit <n>',
      '--json',
    ]) {
      assert.ok(keys.stdout.includes(text), `keys help mentions ${text}`);
    }
    assert.equal((await runCli(['help', 'keys'])).stdout, keys.stdout);
    const demo = await runCli(['demo', '--help']);
    assert.equal(demo.code, 0);
    for (const text of ['--port <port>', '--host <host>', '--dir <path>', 'examples/payments']) {
      assert.ok(demo.stdout.includes(text), `demo help mentions ${text}`);
    }
  });

  it('prints the version, from the package', { timeout: 30_000 }, async () => {
    const { code, stdout } = await runCli(['--version']);
    assert.equal(code, 0);
    assert.match(stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('runs from a checkout without --conditions (the bin adds the source condition itself)', {
    timeout: 30_000,
  }, async () => {
    const { code, stdout, stderr } = await runCli(['proxy', '--help'], {}, { node: [] });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^Usage: oncely proxy --upstream <url>/);
  });
});

describe('oncely exit codes', () => {
  it('exits 2 with the problem and a pointer to help for invalid usage', { timeout: 30_000 }, async () => {
    const cases: Array<[string[], RegExp]> = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['proxy'], /--upstream is required/],
      [['proxy', '--upstream', 'http://127.0.0.1:1', '--lease', '5x'], /--lease: "5x" is not a duration/],
      [['proxy', '--upstream', 'http://127.0.0.1:1', '--bogus'], /Unknown option '--bogus'/],
      [['keys'], /keys needs a subcommand/],
      [['keys', 'purge'], /keys purge needs --expired/],
      [['keys', 'show'], /keys show needs a key/],
      [['keys', 'list', '--scope', 'x'], /--scope does not apply to keys list/],
      [['demo', '--port', 'x'], /--port: "x" is not a port/],
    ];
    for (const [args, pattern] of cases) {
      const { code, stderr } = await runCli(args);
      assert.equal(code, 2, `oncely ${args.join(' ')}: ${stderr}`);
      assert.match(stderr, pattern);
      assert.match(stderr, /Run 'oncely .*--help' for usage\./);
    }
    const fromEnv = await runCli(['proxy'], {
      ONCELY_UPSTREAM: 'http://127.0.0.1:1',
      ONCELY_MAX_BODY: 'big',
    });
    assert.equal(fromEnv.code, 2);
    assert.match(fromEnv.stderr, /--max-body \(from ONCELY_MAX_BODY\): "big" is not a size/);
  });

  it('exits 1 with the reason, as a JSON line, when the store does not answer at start-up', {
    timeout: 30_000,
  }, async () => {
    // A port nothing listens on: nothing is started, nothing is stopped.
    const { createServer } = await import('node:net');
    const probe = createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => probe.once('listening', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const started = Date.now();
    const { code, stdout, stderr } = await runCli([
      'proxy',
      '--upstream',
      'http://127.0.0.1:1',
      '--port',
      '0',
      '--store',
      `redis://127.0.0.1:${port}`,
      '--store-wait',
      '800ms',
    ]);
    assert.equal(code, 1, `${stdout}${stderr}`);
    assert.ok(Date.now() - started < 15_000);
    assert.doesNotMatch(stdout, /listening on/, 'it never listened');
    const line = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; level?: string; error?: string })
      .find((entry) => entry.msg === 'store_unavailable');
    assert.ok(line, `a store_unavailable line: ${stdout}`);
    assert.equal(line.level, 'error');
    assert.match(line.error ?? '', /did not answer within 800ms/);
  });

  it('exits 1 when the port is taken', { timeout: 30_000 }, async () => {
    const first = await startGatewayProcess([
      'proxy',
      '--upstream',
      'http://127.0.0.1:1',
      '--port',
      '0',
      '--store',
      'memory',
    ]);
    const port = new URL(first.url).port;
    const second = await runCli([
      'proxy',
      '--upstream',
      'http://127.0.0.1:1',
      '--port',
      port,
      '--store',
      'memory',
    ]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    assert.equal(await first.stop(), 0);
  });

  it('resolves flags over environment over config file, end to end (--print-config)', {
    timeout: 30_000,
  }, async () => {
    const config = join(dir, 'print.json');
    writeFileSync(
      config,
      JSON.stringify({
        upstream: 'http://file:1',
        port: 1111,
        lease: '11s',
        ttl: '11h',
        store: 'postgres://u:hunter2@db/app',
      }),
    );
    const { code, stdout } = await runCli(['proxy', '--config', config, '--port', '3333', '--print-config'], {
      ONCELY_PORT: '2222',
      ONCELY_LEASE: '22s',
    });
    assert.equal(code, 0);
    const printed = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(printed.port, 3333);
    assert.equal(printed.lease, '22s');
    assert.equal(printed.ttl, '11h');
    assert.equal(printed.upstream, 'http://file:1/');
    assert.equal(printed.store, 'postgres://u:***@db/app', 'the password is hidden');
    assert.equal(printed.cache, 'success-only');
  });
});

describe('oncely keys', () => {
  it('lists, shows and purges the records of a SQLite store the proxy wrote', {
    timeout: 30_000,
  }, async () => {
    const file = join(dir, 'keys.db');
    const store = sqliteStore({ database: file, sweepIntervalMs: 0 });
    // Unscoped requests are allowed here, so the listing has a record of each kind.
    const g = await startGateway({ store, scopeHeader: 'authorization', requireScope: false });
    const key = 'order_1:pay:1';
    const auth = 'Bearer sk_test_keys';
    assert.equal((await post(g.url, '/payments', key, '{"amount":5}', { authorization: auth })).status, 201);
    assert.equal((await post(g.url, '/payments', 'unscoped-key')).status, 201);
    // An expired record, as a crashed writer leaves it.
    const past = Date.now() - 10_000;
    await store.acquire({
      id: 'f'.repeat(64),
      fingerprint: 'x',
      token: 't',
      now: past - 5000,
      leaseUntil: past,
      expiresAt: past,
    });
    await g.close();
    await store.close();
    const storeFlag = ['--store', `sqlite:${file}`];

    const list = await runCli(['keys', 'list', ...storeFlag]);
    assert.equal(list.code, 0, list.stderr);
    const scopedId = recordId(scopeOf(auth), key);
    assert.match(list.stdout, /^ID\s+STATE\s+STATUS\s+BYTES\s+EXPIRES\s+LEASE UNTIL$/m);
    assert.match(list.stdout, new RegExp(`^${scopedId}\\s+completed\\s+201\\s+\\d+\\s+\\d{4}-`, 'm'));
    assert.match(list.stdout, new RegExp(`^${recordId('', 'unscoped-key')}\\s+completed`, 'm'));
    assert.ok(!list.stdout.includes('f'.repeat(64)), 'expired records are not listed');
    const json = await runCli(['keys', 'list', '--json', '--limit', '1', ...storeFlag]);
    assert.equal(json.stdout.trim().split('\n').length, 1);
    assert.equal((JSON.parse(json.stdout) as { state: string }).state, 'completed');

    const shown = await runCli(['keys', 'show', key, '--scope', auth, '--body'], {
      ONCELY_STORE: `sqlite:${file}`,
    });
    assert.equal(shown.code, 0, shown.stderr);
    const record = JSON.parse(shown.stdout) as {
      id: string;
      state: string;
      response: { status: number; body: string };
    };
    assert.equal(record.id, scopedId);
    assert.equal(record.state, 'completed');
    assert.equal(record.response.status, 201);
    assert.deepEqual(JSON.parse(record.response.body), { id: 'pay_1', amount: 5, n: 1 });
    const quoted = await runCli(['keys', 'show', `"${key}"`, '--scope', auth, ...storeFlag]);
    assert.equal(quoted.code, 0, 'the sf-string form names the same key');
    assert.ok(!quoted.stdout.includes('"body"'), 'no body without --body');

    const unscoped = await runCli(['keys', 'show', key, ...storeFlag]);
    assert.equal(unscoped.code, 1, 'without its scope the key is another key');
    assert.match(unscoped.stderr, /no live record for this key without --scope/);

    const purged = await runCli(['keys', 'purge', '--expired', ...storeFlag]);
    assert.equal(purged.code, 0, purged.stderr);
    assert.equal(purged.stdout, 'deleted 1 expired record\n');
    assert.equal(
      (await runCli(['keys', 'purge', '--expired', ...storeFlag])).stdout,
      'deleted 0 expired records\n',
    );
    assert.match(
      (await runCli(['keys', 'list', ...storeFlag])).stdout,
      new RegExp(scopedId),
      'live records stay',
    );
  });

  it('says clearly what it cannot do', { timeout: 30_000 }, async () => {
    const memory = await runCli(['keys', 'list', '--store', 'memory']);
    assert.equal(memory.code, 1);
    assert.match(memory.stderr, /not supported for the memory store/);
    const missing = await runCli(['keys', 'list', '--store', `sqlite:${join(dir, 'nope.db')}`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no SQLite store at .*nope\.db/);
    const invalid = await runCli(['keys', 'show', 'bad\tkey', '--store', `sqlite:${join(dir, 'keys.db')}`]);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /is not a valid Idempotency-Key/);
  });

  it('lists and purges through the store, and says so when a store cannot', async () => {
    const inner = memoryStore({ sweepIntervalMs: 0 });
    const now = Date.now();
    for (let i = 0; i < 5; i++) {
      const id = recordId('cli', `key-${i}`);
      await inner.acquire({
        id,
        fingerprint: 'f',
        token: 't',
        now,
        leaseUntil: now + 1000,
        expiresAt: now + 60_000,
      });
    }
    // As a store of its own package would be: same methods, opened from a URL (not the memory kind).
    const opened = (store: Store): OpenedStore => ({
      store,
      spec: { kind: 'sqlite', path: 'unused.db' },
      client: store,
      close: () => store.close(),
    });
    // Pages of two: the listing goes on until --limit.
    const paged: Store = {
      ...inner,
      list: (input) => inner.list({ ...input, limit: Math.min(2, input.limit) }),
    };
    const listed = await listKeys(opened(paged), { now, limit: 4, json: true });
    assert.equal(listed.trim().split('\n').length, 4);
    assert.equal(await purgeExpiredKeys(opened(inner), { now: now + 60_000 }), 'deleted 5 expired records\n');
    const { list: _list, purgeExpired: _purge, ...bare } = inner;
    await assert.rejects(listKeys(opened(bare), { now, limit: 10, json: false }), {
      name: 'NotSupportedError',
      message: 'this store (memory) cannot be listed',
    });
    await assert.rejects(
      purgeExpiredKeys(opened(bare), { now }),
      /this store \(memory\) cannot purge expired records/,
    );
    await inner.close();
  });
});

describe('oncely demo', () => {
  it('runs the payments example: a payment, its replay, and a clean stop', { timeout: 60_000 }, async () => {
    const demoDir = mkdtempSync(join(dir, 'demo-'));
    const demo = await startGatewayProcess(
      ['demo', '--port', '0', '--dir', demoDir],
      {},
      {
        ready: /listening on (http:\/\/\S+)[\s\S]*Count the charges/,
      },
    );
    const body = '{"amount":1999,"currency":"eur","customer":"cus_42"}';
    const headers = { authorization: 'Bearer sk_test_demo' };
    const first = await post(demo.url, '/payments', 'demo-key', body, headers);
    assert.equal(first.status, 201, first.body.toString());
    const again = await post(demo.url, '/payments', 'demo-key', body, headers);
    assert.equal(again.header('idempotent-replayed'), 'true');
    assert.match(demo.stdout(), /Oncely payments demo listening on http:\/\/127\.0\.0\.1:\d+/);
    assert.equal(await demo.stop('SIGTERM'), 0);
  });
});
