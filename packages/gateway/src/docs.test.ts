// docs/gateway.md documents every setting, problem code and metric the gateway has: kept in sync here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { envName, PROXY_SETTINGS } from './config.ts';
import { GatewayMetrics, OUTCOMES } from './metrics.ts';
import { GATEWAY_DOCS_URL, GATEWAY_PROBLEMS, gatewayProblem } from './problems.ts';

const docs = readFileSync(new URL('../../../docs/gateway.md', import.meta.url), 'utf8');
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

it('documents every problem code: the table, a section, and the type link to it', () => {
  for (const [code, { status, title }] of Object.entries(GATEWAY_PROBLEMS)) {
    assert.ok(rows.includes(`| ${code} | ${status} | ${title} |`), `table row for ${code}`);
    assert.match(docs, new RegExp(`^### ${code}$`, 'm'), `section for ${code}`);
    const problem = JSON.parse(
      new TextDecoder().decode(gatewayProblem(code as keyof typeof GATEWAY_PROBLEMS, 'x').body),
    );
    assert.equal(problem.type, `${GATEWAY_DOCS_URL}#${code.toLowerCase()}`);
    assert.deepEqual(Object.keys(problem), ['type', 'title', 'status', 'detail', 'code']);
  }
  const table = rows.filter(
    (line) =>
      /^\| ERR_ONCELY_/.test(line) && docs.indexOf(line) > docs.indexOf('## Problems the gateway adds'),
  );
  assert.equal(table.length, Object.keys(GATEWAY_PROBLEMS).length, 'no undocumented extra rows');
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
