// docs/gateway.md documents every setting, problem code and metric the gateway has: kept in sync here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { ERROR_CODES } from '@oncely/core';
import { envName, PROXY_SETTINGS } from './config.ts';
import { GatewayMetrics, OUTCOMES } from './metrics.ts';

const docs = readFileSync(new URL('../../../docs/gateway.md', import.meta.url), 'utf8');
const errors = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
const rows = docs.split('\n').filter((line) => line.startsWith('| '));

it('lists every setting with its environment variable and default', () => {
  for (const setting of PROXY_SETTINGS) {
    const row = rows.find((line) => line.startsWith(`| \`--${setting.name}`));
    assert.ok(row, `docs/gateway.md has a row for --${setting.name}`);
    const cells = row.split(' | ');
    assert.equal(cells[1], `\`${envName(setting.name)}\``, `--${setting.name}: environment variable`);
    const expected =
      setting.default === undefined ? /^(required|none)$/ : new RegExp(`^\`${setting.default}\`$`);
    assert.match(cells[2]!, expected, `--${setting.name}: default`);
  }
});

it('sends only codes of the one registry, each documented in docs/errors.md', () => {
  // The gateway's problems are core's codes (errors.test.ts keeps them in sync with docs/errors.md);
  // this page names the ones the gateway adds and points there.
  const source = readFileSync(new URL('./gateway.ts', import.meta.url), 'utf8');
  const sent = new Set([...source.matchAll(/'(ERR_ONCELY_[A-Z_]+)'/g)].map(([, code]) => code!));
  assert.ok(sent.size >= 3, `the gateway names its codes: ${[...sent].join(', ')}`);
  for (const code of sent) {
    assert.ok(code in ERROR_CODES, `${code} is in core's registry`);
    assert.match(errors, new RegExp(`^### ${code}$`, 'm'), `docs/errors.md has a section for ${code}`);
  }
  for (const code of [
    'ERR_ONCELY_BODY_TOO_LARGE',
    'ERR_ONCELY_UPSTREAM_UNAVAILABLE',
    'ERR_ONCELY_UPSTREAM_TIMEOUT',
  ]) {
    assert.ok(docs.includes(`\`${code}\``), `docs/gateway.md names ${code}`);
  }
});

it('documents every metric series and outcome', () => {
  const series = new Set(
    new GatewayMetrics()
      .render()
      .split('\n')
      .filter((line) => line.startsWith('# TYPE '))
      .map((line) => line.split(' ')[2]!),
  );
  for (const name of series) assert.ok(docs.includes(`\`${name}`), `docs/gateway.md lists ${name}`);
  for (const outcome of OUTCOMES)
    assert.ok(docs.includes(`\`${outcome}\``), `docs/gateway.md names the outcome ${outcome}`);
});
