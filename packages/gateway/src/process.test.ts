// The gateway as an operator runs it: `oncely proxy` processes on a SQLite file, restarted, killed,
// stopped while requests are in flight.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { newKey, post } from './test-client.ts';
import { type GatewayProcess, startGatewayProcess } from './test-gateway.ts';
import { startTestUpstream, type TestUpstream } from './test-upstream.ts';

const dir = mkdtempSync(join(tmpdir(), 'oncely-process-'));
const processes: GatewayProcess[] = [];
const upstreams: TestUpstream[] = [];
after(async () => {
  for (const p of processes) await p.stop('SIGKILL');
  for (const u of upstreams) await u.close();
  rmSync(dir, { recursive: true, force: true });
});

async function upstream(): Promise<TestUpstream> {
  const u = await startTestUpstream();
  upstreams.push(u);
  return u;
}

async function proxy(args: string[], env: Record<string, string> = {}): Promise<GatewayProcess> {
  const p = await startGatewayProcess(['proxy', '--port', '0', ...args], env);
  processes.push(p);
  return p;
}

describe('oncely proxy processes', () => {
  it('keeps replaying across a restart on the same SQLite file', { timeout: 60_000 }, async () => {
    const u = await upstream();
    const args = ['--upstream', u.url, '--store', `sqlite:${join(dir, 'restart.db')}`];
    const first = await proxy(args);
    const key = newKey();
    const created = await post(first.url, '/payments', key);
    assert.equal(created.status, 201);
    assert.equal(await first.stop('SIGTERM'), 0, 'a clean exit');

    const second = await proxy(args);
    const replay = await post(second.url, '/payments', key);
    assert.equal(replay.status, 201);
    assert.equal(replay.header('idempotent-replayed'), 'true');
    assert.deepEqual(replay.json(), created.json());
    assert.equal(u.app.count('payments'), 1, 'the upstream ran it once');
    assert.equal(await second.stop('SIGINT'), 0);
  });

  it('frees a key within one lease after the gateway is SIGKILLed mid-call', {
    timeout: 60_000,
  }, async () => {
    const u = await upstream();
    const leaseMs = 2000;
    const args = [
      '--upstream',
      u.url,
      '--store',
      `sqlite:${join(dir, 'crash.db')}`,
      '--lease',
      `${leaseMs}ms`,
    ];
    const doomed = await proxy(args);
    const key = newKey();
    const lost = post(doomed.url, '/crash-once', key).catch((error: unknown) => error);
    while (u.app.count('crash-once') === 0) await sleep(5);
    // The key is acquired (the upstream has the request); its lease ends at the latest leaseMs after
    // the last renewal, and the last renewal was before the kill.
    assert.equal(await doomed.stop('SIGKILL'), 'SIGKILL');
    const killedAt = Date.now();
    assert.ok((await lost) instanceof Error, 'the client lost its connection');

    const survivor = await proxy(args);
    const refusals: number[] = [];
    let reply = await post(survivor.url, '/crash-once', key);
    for (let sentAt = Date.now(); reply.status === 409; sentAt = Date.now()) {
      assert.equal(reply.json().code, 'ERR_ONCELY_IN_PROGRESS');
      refusals.push(sentAt - killedAt);
      assert.ok(sentAt - killedAt < 10 * leaseMs, 'the key came free');
      await sleep(100);
      reply = await post(survivor.url, '/crash-once', key);
    }
    // No retry sent after the dead gateway's lease ended was refused.
    for (const at of refusals)
      assert.ok(at <= leaseMs + 50, `a 409 ${at} ms after the kill is past the ${leaseMs} ms lease`);
    assert.equal(reply.status, 201, `${reply.status}: ${reply.body}`);
    assert.equal(reply.header('idempotent-replayed'), undefined, 'the retry ran (took the key over)');
    console.log(
      `# SIGKILL: ${refusals.length} retries refused while the lease held; key free ${Date.now() - killedAt} ms after the kill (lease ${leaseMs} ms)`,
    );
    assert.equal(u.app.count('crash-once'), 2);
    assert.equal((await post(survivor.url, '/crash-once', key)).header('idempotent-replayed'), 'true');
    const logs = survivor
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{'));
    assert.ok(
      logs.some((line) => (JSON.parse(line) as { takeover?: boolean }).takeover === true),
      'the takeover is logged',
    );
    await survivor.stop();
  });

  it('finishes requests in flight on SIGTERM, then exits 0; logs JSON lines without the raw key', {
    timeout: 60_000,
  }, async () => {
    const u = await upstream();
    const p = await proxy(['--upstream', u.url, '--store', `sqlite:${join(dir, 'graceful.db')}`]);
    const key = 'graceful-RAW-key';
    const pending = post(p.url, '/gated', key, '{"secret":"BODY-SECRET"}');
    while (u.app.count('gated') === 0) await sleep(5);
    p.child.kill('SIGTERM');
    await sleep(200);
    assert.equal(p.child.exitCode, null, 'still running while a request is in flight');
    u.gate.open();
    const reply = await pending;
    assert.equal(reply.status, 201);
    assert.equal(await p.exited, 0);

    const lines = p.stdout().trim().split('\n');
    assert.match(
      lines.find((line) => line.startsWith('listening on')) ?? '',
      /^listening on http:\/\/127\.0\.0\.1:\d+$/,
    );
    const entries = lines
      .filter((line) => !line.startsWith('listening on'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const request = entries.find((entry) => entry.msg === 'request');
    assert.equal(request?.outcome, 'executed');
    assert.equal(request?.status, 201);
    assert.match(String(request?.keyHash), /^[0-9a-f]{64}$/);
    assert.equal(typeof request?.time, 'string');
    assert.ok(
      !p.stdout().includes(key) && !p.stdout().includes('BODY-SECRET'),
      'no raw key or body in the logs',
    );
    assert.ok(entries.some((entry) => entry.msg === 'stopped'));
  });
});
