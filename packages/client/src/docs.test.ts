// Keeps the documentation honest: every error code has its section in docs/client.md (the anchor
// `docsUrl` points to), and the README's options table lists exactly the options, with the defaults
// of CLIENT_DEFAULTS.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { CLIENT_DEFAULTS, CLIENT_ERROR_CODES } from './index.ts';

const root = join(import.meta.dirname, '..', '..', '..');
const guide = readFileSync(join(root, 'docs', 'client.md'), 'utf8');
const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');

it('docs/client.md has a section for every client error code, and none for a code that does not exist', () => {
  const sections = [...guide.matchAll(/^### (ERR_ONCELY_CLIENT_\w+)$/gm)].map((m) => m[1]);
  assert.deepEqual(sections.sort(), Object.keys(CLIENT_ERROR_CODES).sort());
});

it('the README options table lists every option with its default', () => {
  const rows = new Map(
    [...readme.matchAll(/^\| `(\w+)` \| .+? \| (.+) \|$/gm)].map((m) => [m[1]!, m[2]!] as const),
  );
  assert.deepEqual([...rows.keys()].sort(), [...Object.keys(CLIENT_DEFAULTS), 'onRetry'].sort());
  for (const [name, value] of Object.entries(CLIENT_DEFAULTS)) {
    if (typeof value === 'function') continue;
    const shown =
      typeof value === 'string'
        ? `'${value}'`
        : Array.isArray(value)
          ? `[${value.map((v) => `'${v}'`).join(', ')}]`
          : String(value);
    assert.ok(
      rows.get(name)!.startsWith(`\`${shown}\``),
      `${name}: README says ${rows.get(name)}, default is ${shown}`,
    );
  }
});
