// Loads every package from its built dist/ (no `oncely:source` condition), as a user of the published
// packages would, and checks that the main entry points exist and the type declarations were emitted.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const { workspaces } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  workspaces: string[];
};
let failed = false;
for (const dir of workspaces) {
  const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as {
    name: string;
    private?: boolean;
  };
  if (pkg.private) continue; // examples and the benchmarks are not published
  for (const file of ['dist/index.js', 'dist/index.d.ts']) {
    if (!existsSync(join(root, dir, file))) {
      console.error(`${pkg.name}: ${file} was not emitted`);
      failed = true;
    }
  }
  const mod = (await import(pkg.name)) as Record<string, unknown>;
  const names = Object.keys(mod);
  if (names.length === 0) {
    console.error(`${pkg.name}: dist entry exports nothing`);
    failed = true;
  } else {
    console.log(`${pkg.name}: dist loads, exports ${names.join(', ')}`);
  }
}
if (failed) process.exit(1);
