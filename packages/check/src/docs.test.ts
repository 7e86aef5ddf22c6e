// docs/check.md documents every flag with its default, every case and every error code, and the
// README's options table lists every option: kept in sync here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { CASES, CHECK_DEFAULTS, CHECK_ERROR_CODES, CHECK_FLAGS } from './index.ts';

const root = join(import.meta.dirname, '..', '..', '..');
const docs = readFileSync(join(root, 'docs', 'check.md'), 'utf8');
const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');

it('docs/check.md has a row for every flag, with its default', () => {
  const rows = docs.split('\n').filter((line) => line.startsWith('| `'));
  for (const flag of CHECK_FLAGS) {
    const name = `${flag.short ? `-${flag.short}, ` : ''}--${flag.name}`;
    const row = rows.find((line) => line.startsWith(`| \`${name}`));
    assert.ok(row, `a row for ${name}`);
    if (flag.default !== undefined)
      assert.ok(row.includes(`| \`${flag.default}\` |`), `${name}: default ${flag.default}`);
  }
});

it('docs/check.md explains every case, under a heading naming its id', () => {
  const headings = [...docs.matchAll(/^### .*$/gm)].map(([line]) => line);
  for (const id of CASES)
    assert.ok(
      headings.some((h) => h.includes(`\`${id}\``)),
      `a heading for ${id}`,
    );
});

it('docs/check.md has a section for every error code, and none for a code that does not exist', () => {
  const sections = [...docs.matchAll(/^### (ERR_ONCELY_CHECK_\w+)$/gm)].map((m) => m[1]);
  assert.deepEqual(sections.sort(), Object.keys(CHECK_ERROR_CODES).sort());
});

it('the README options table lists every option, with the defaults of CHECK_DEFAULTS', () => {
  const rows = new Map(
    [...readme.matchAll(/^\| `(\w+)` \| .+? \| (.+) \|$/gm)].map((m) => [m[1]!, m[2]!] as const),
  );
  for (const [name, value] of Object.entries(CHECK_DEFAULTS)) {
    const shown = typeof value === 'string' ? `'${value}'` : String(value);
    assert.ok(
      rows.get(name)?.startsWith(`\`${shown}\``),
      `${name}: README says ${rows.get(name)}, default is ${shown}`,
    );
  }
  for (const name of [
    'url',
    'otherBody',
    'failBody',
    'tenantHeader',
    'countUrl',
    'disconnectAfterMs',
    'cases',
    'onProgress',
  ]) {
    assert.ok(rows.has(name), `README lists ${name}`);
  }
});
