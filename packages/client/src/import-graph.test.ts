// The package must load in browsers: nothing reachable from its entry may import a `node:` module
// (or any other package), and no library file may lean on Node globals.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { it } from 'node:test';

const here = import.meta.dirname;
const isLibraryFile = (name: string) =>
  name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.startsWith('test-');

/** Every module specifier of a file: static imports and re-exports, side-effect imports, import(). */
function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'"]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) found.push(match[1]!);
  return found;
}

it('the entry reaches only relative modules of this package: no node:, no packages', () => {
  const seen = new Set<string>();
  const outside: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('./') || spec.startsWith('../')) visit(resolve(dirname(file), spec));
      else outside.push(`${file.slice(here.length + 1)} imports ${spec}`);
    }
  };
  visit(join(here, 'index.ts'));
  assert.deepEqual(outside, []);
  // The walk really walked: every library file is reachable from the entry.
  const library = readdirSync(here)
    .filter(isLibraryFile)
    .map((name) => join(here, name));
  assert.deepEqual([...seen].sort(), library.sort());
});

it('the specifier scan finds node: imports where they are', () => {
  const sample = `import { a } from 'node:fs';\nexport * from "node:path";\nimport 'node:os';\nawait import('node:crypto');\nimport type { X } from './x.ts';`;
  assert.deepEqual(specifiers(sample).sort(), ['./x.ts', 'node:crypto', 'node:fs', 'node:os', 'node:path']);
});

it('no library file uses Node-only globals', () => {
  for (const name of readdirSync(here).filter(isLibraryFile)) {
    const code = readFileSync(join(here, name), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/\/\/.*$/gm, '');
    for (const global of [/\bBuffer\b/, /\bprocess\./, /\b__dirname\b/, /\bsetImmediate\b/]) {
      assert.doesNotMatch(code, global, `${name} uses ${global.source}`);
    }
  }
});
