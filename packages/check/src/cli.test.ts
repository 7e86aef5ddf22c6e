// `oncely check` as a command: what it prints before sending, when it refuses to send, the JSON
// report, exit codes, and its help through the `oncely` bin.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { runCli } from '../../gateway/src/test-gateway.ts';
import { CHECK_FLAGS, type CheckIo, checkCommand, type Report } from './index.ts';
import { startTestApi } from './test-servers.ts';

/** A server that counts the requests it gets, answering 201 to all. */
async function counting(): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"x"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

function io(stdin?: CheckIo['stdin']): CheckIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: (text) => {
      out += text;
    },
    stderr: (text) => {
      err += text;
    },
    ...(stdin ? { stdin } : {}),
    help: () => 'the help\n',
    out: () => out,
    err: () => err,
  };
}

/** A terminal's stdin that answers `answer` once asked. */
function terminal(answer: string): CheckIo['stdin'] {
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean };
  stdin.isTTY = true;
  setTimeout(() => stdin.write(`${answer}\n`), 50);
  return stdin;
}

describe('oncely check, safety', () => {
  it('refuses a count URL on another origin before sending anything (exit 2)', async () => {
    const target = await counting();
    const run = io();
    const code = await checkCommand(
      [`${target.url}/things`, '--count-url', 'http://127.0.0.2:1/count', '--yes'],
      run,
    );
    assert.equal(code, 2);
    assert.match(run.err(), /the count URL http:\/\/127\.0\.0\.2:1 is not on the audited origin/);
    assert.match(run.err(), /Run 'oncely check --help' for usage/);
    assert.equal(target.requests(), 0);
  });

  it('without --yes and without a terminal, prints the plan, says to add --yes and sends nothing (exit 2)', async () => {
    const target = await counting();
    const stdin = new PassThrough() as PassThrough & { isTTY?: boolean };
    const run = io(stdin);
    const code = await checkCommand(
      [`${target.url}/things`, '--body', '{"n":1}', '-H', 'Authorization: Bearer secret'],
      run,
    );
    assert.equal(code, 2);
    assert.match(run.err(), /^oncely check: POST http:\/\/127\.0\.0\.1:\d+\/things$/m);
    assert.match(run.err(), /10 cases|8 cases/);
    assert.match(
      run.err(),
      /at most \d+ requests \(\d+ unless keys stay in progress\), to http:\/\/127\.0\.0\.1:\d+ only/,
    );
    assert.match(run.err(), /headers sent with every request: Authorization \(values not shown\)/);
    assert.ok(!run.err().includes('secret'), 'header values are never printed');
    assert.match(run.err(), /stdin is not a terminal, so nobody can confirm: add --yes/);
    assert.equal(target.requests(), 0);
  });

  it('asks on a terminal: "n" sends nothing (exit 1), "y" runs the audit', async () => {
    const target = await counting();
    const declined = io(terminal('n'));
    assert.equal(await checkCommand([`${target.url}/things`, '--cases', 'missing-key'], declined), 1);
    assert.match(declined.err(), /Send them\? \[y\/N\] /);
    assert.match(declined.err(), /not confirmed, nothing was sent/);
    assert.equal(target.requests(), 0);
    const confirmed = io(terminal('y'));
    // The counting server accepts a request without a key: info, not a failure.
    assert.equal(await checkCommand([`${target.url}/things`, '--cases', 'missing-key'], confirmed), 0);
    assert.equal(target.requests(), 1);
    assert.match(confirmed.out(), /INFO {2}no key/);
  });

  it('exits 2 for invalid usage, naming the problem', async () => {
    for (const [args, message] of [
      [[], /needs the URL to audit/],
      [['http://a.test/x', 'http://b.test/y'], /unexpected argument/],
      [['http://a.test/x', '--wait', '30'], /--wait: "30" is not a duration/],
      [['http://a.test/x', '--concurrency', 'many'], /concurrency must be an integer from 2 to 500/],
      [['http://a.test/x', '--header', 'Host: b.test'], /header Host: the auditor writes it itself/],
      [['ftp://a.test/x'], /only http and https URLs/],
      [['http://a.test/x', '--cases', 'replay,nope'], /unknown case "nope"/],
      [['http://a.test/x', '--nope'], /Unknown option '--nope'/],
    ] as const) {
      const run = io();
      assert.equal(await checkCommand([...args], run), 2, args.join(' '));
      assert.match(run.err(), message, args.join(' '));
    }
  });
});

describe('oncely check, output', () => {
  it('prints the report as JSON with --json, progress on stderr, and exits 1 when a case fails', {
    timeout: 30_000,
  }, async () => {
    const api = await startTestApi({ idempotency: false, latencyMs: 10 });
    after(() => api.close());
    const run = io();
    const code = await checkCommand(
      [`${api.url}/payments`, '--body', '{"amount":1}', '--cases', 'replay,missing-key', '--json', '--yes'],
      run,
    );
    assert.equal(code, 1);
    const report = JSON.parse(run.out()) as Report;
    assert.equal(report.tool, '@oncely/check');
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.cases.map((c) => [c.id, c.verdict]),
      [
        ['replay', 'fail'],
        ['missing-key', 'info'],
      ],
    );
    assert.equal(report.requests, 3);
    assert.match(report.keyPrefix, /^oncely-check-[0-9a-f]{8}-$/);
    assert.match(run.err(), /\[1\/2\] retry, same key and body … fail\n {2}\[2\/2\] no key … info\n/);
  });

  it('prints the help it is given for --help (the oncely CLI owns the text)', async () => {
    const run = io();
    assert.equal(await checkCommand(['--help'], run), 0);
    assert.equal(run.out(), 'the help\n');
  });
});

describe('oncely check through the oncely bin', () => {
  it('has help listing every flag, the same as oncely help check, and oncely --help names it', {
    timeout: 30_000,
  }, async () => {
    const help = await runCli(['check', '--help']);
    assert.equal(help.code, 0, help.stderr);
    for (const flag of CHECK_FLAGS)
      assert.ok(help.stdout.includes(`--${flag.name}`), `help shows --${flag.name}`);
    assert.match(help.stdout, /^Usage: oncely check <url> \[options\]/);
    assert.equal((await runCli(['help', 'check'])).stdout, help.stdout);
    const main = await runCli(['--help']);
    assert.match(main.stdout, /^ {2}check <url> {2}Audit any HTTP API's idempotency from the outside/m);
  });

  it('exits 2 without a URL', { timeout: 30_000 }, async () => {
    const { code, stderr } = await runCli(['check']);
    assert.equal(code, 2);
    assert.match(stderr, /oncely check: check needs the URL to audit/);
  });
});
