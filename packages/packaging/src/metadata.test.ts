// What the registry shows and what an install resolves, checked for every public package: the license
// file npm packs, where the code and the issues live, the `./package.json` export tools read, sibling
// ranges that let one fix reach every package, the supported Node range, and README links that work on
// the registry's page (a relative `../../docs/x.md` resolves against the registry, not GitHub).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

/** The Node versions every package supports: the engines field, the README, the CLI and the SQLite store say the same. */
const NODE_RANGE = '^22.16.0 || >=24';
const REPO = 'https://github.com/oncely/oncely';

interface PackageJson {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
  keywords?: string[];
  homepage?: string;
  bugs?: { url?: string };
  repository?: { type?: string; url?: string; directory?: string };
  sideEffects?: boolean | string[];
  bin?: Record<string, string>;
  exports?: Record<string, unknown>;
  files?: string[];
  engines?: { node?: string };
  publishConfig?: { access?: string };
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const root = join(import.meta.dirname, '..', '..', '..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const { workspaces } = JSON.parse(read('package.json')) as { workspaces: string[] };
const all = workspaces
  .filter((dir) => existsSync(join(root, dir, 'package.json')))
  .map((dir) => ({ dir, pkg: JSON.parse(read(join(dir, 'package.json'))) as PackageJson }));
const published = all.filter(({ pkg }) => !pkg.private);
const versions = new Map(all.map(({ pkg }) => [pkg.name, pkg.version]));

it('finds the public packages', () => {
  assert.ok(published.length >= 10, published.map(({ pkg }) => pkg.name).join(', '));
});

for (const { dir, pkg } of published) {
  describe(pkg.name, () => {
    it('is MIT, with the root LICENSE in its folder (npm packs only the package folder)', () => {
      assert.equal(pkg.license, 'MIT');
      assert.equal(read(join(dir, 'LICENSE')), read('LICENSE'));
      if (pkg.files) assert.ok(pkg.files.includes('LICENSE'), 'files lists LICENSE');
    });

    it('names its repository, homepage, issue tracker and keywords', () => {
      assert.deepEqual(pkg.repository, { type: 'git', url: `git+${REPO}.git`, directory: dir });
      assert.equal(pkg.homepage, `${REPO}/tree/main/${dir}#readme`);
      assert.deepEqual(pkg.bugs, { url: `${REPO}/issues` });
      assert.ok(Array.isArray(pkg.keywords) && pkg.keywords.length > 0, 'keywords');
    });

    it('is published public (a scoped package is restricted by default)', () => {
      assert.equal(pkg.publishConfig?.access, 'public');
    });

    it('exports ./package.json, and says whether it has side effects', () => {
      assert.equal(pkg.exports?.['./package.json'], './package.json');
      assert.ok(
        pkg.sideEffects === false || Array.isArray(pkg.sideEffects),
        'sideEffects is false or a list',
      );
      for (const target of Object.values(pkg.bin ?? {})) {
        assert.ok(
          Array.isArray(pkg.sideEffects) && pkg.sideEffects.includes(target),
          `${target} runs on load`,
        );
      }
    });

    it(`supports Node ${NODE_RANGE}`, () => {
      assert.equal(pkg.engines?.node, NODE_RANGE);
    });

    it('depends on its siblings by caret range, not an exact version', () => {
      for (const field of ['dependencies', 'peerDependencies', 'devDependencies'] as const) {
        for (const [name, range] of Object.entries(pkg[field] ?? {})) {
          const version = versions.get(name);
          if (version !== undefined) assert.equal(range, `^${version}`, `${field}.${name}`);
        }
      }
    });

    it('leaves its tests out of the tarball', () => {
      if (!pkg.files) return;
      for (const pattern of ['!src/**/*.test.ts', '!src/**/test-*.ts']) {
        assert.ok(pkg.files.includes(pattern), `files has ${pattern}`);
      }
    });

    it('has README links that work on the registry page', () => {
      if (!existsSync(join(root, dir, 'README.md'))) return;
      const readme = read(join(dir, 'README.md'));
      for (const [, target] of readme.matchAll(/\]\(([^)\s]+)\)/g)) {
        assert.match(target!, /^(https?:|mailto:|#)/, `relative link ${target} breaks on the registry`);
        checkRepoLink(target!);
      }
    });
  });
}

it(`the root README, the CLI and the SQLite store state the same Node range`, () => {
  assert.ok(read('README.md').includes(`\`${NODE_RANGE}\``), 'README.md states the range');
  assert.ok(read('packages/gateway/bin/oncely.js').includes(`'${NODE_RANGE}'`), 'the oncely bin');
  assert.ok(read('packages/sqlite/src/index.ts').includes(NODE_RANGE), '@oncely/sqlite');
});

/** A link into this repository's main branch must name a file that exists, and a heading if it has an anchor. */
function checkRepoLink(target: string): void {
  const prefix = `${REPO}/blob/main/`;
  if (!target.startsWith(prefix)) return;
  const [path = '', anchor] = target.slice(prefix.length).split('#');
  assert.ok(existsSync(join(root, path)), `${target}: ${path} does not exist`);
  if (anchor === undefined || !path.endsWith('.md')) return;
  const slugs = [...read(path).matchAll(/^#{1,6} (.+)$/gm)].map((m) => githubSlug(m[1]!));
  assert.ok(slugs.includes(anchor), `${target}: no heading for #${anchor}`);
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
function githubSlug(heading: string): string {
  return heading
    .replace(/`/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}
