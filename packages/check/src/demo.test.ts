// The documented command of docs/check.md, run as printed (the port aside) through the `oncely` bin
// against the payments demo of `npm start` as a process: every case it can run passes.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { startDemo } from '../../../examples/payments/src/demo-process.ts';
import { runCli } from '../../gateway/src/test-gateway.ts';

const docs = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'check.md'), 'utf8');

/** The words of a one-line shell command with 'single' quotes, as a shell splits them. */
function words(command: string): string[] {
  return [...command.matchAll(/'([^']*)'|(\S+)/g)].map(([, quoted, bare]) => quoted ?? bare!);
}

it('the documented oncely check of the demo prints an all-pass report', { timeout: 60_000 }, async () => {
  const line = docs.split('\n').find((l) => l.startsWith('oncely check http://127.0.0.1:3000/payments '));
  assert.ok(line, 'docs/check.md shows the demo command on one line');
  const dir = mkdtempSync(join(tmpdir(), 'oncely-check-demo-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const demo = await startDemo({ ONCELY_DEMO_DIR: dir });
  after(() => demo.child.kill('SIGTERM'));

  const [, command, ...args] = words(line.replace('http://127.0.0.1:3000', demo.url));
  assert.equal(command, 'check');
  assert.ok(args.includes('--yes'), 'the command confirms with --yes (stdin of a test is no terminal)');
  const { code, stdout, stderr } = await runCli(['check', ...args], {}, { timeoutMs: 40_000 });
  assert.equal(code, 0, `${stdout}\n${stderr}`);

  const table = stdout.split('\n').filter((l) => /^ {2}(PASS|WARN|FAIL|INFO|SKIP) {2}/.test(l));
  const verdicts = table.map((l) => l.trim().slice(0, 4));
  assert.deepEqual(
    verdicts,
    ['PASS', 'PASS', 'PASS', 'PASS', 'PASS', 'PASS', 'PASS', 'PASS', 'SKIP', 'SKIP'],
    stdout,
  );
  assert.match(stdout, /^8 pass, 0 warn, 0 fail, 0 info, 2 skip: no failures$/m);
  assert.match(stdout, /50 concurrent duplicates +1 execution \(1×201, 49×409/);
  // Progress and the plan went to stderr, before and while it ran.
  assert.match(stderr, /at most \d+ requests .* to http:\/\/127\.0\.0\.1:\d+ only/);
  assert.match(stderr, /\[10\/10\] same key, another tenant … skip/);
});
