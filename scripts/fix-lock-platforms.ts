// `npm ci` refuses a lockfile that lacks an entry for any optional platform package of a dependency,
// even one it would skip on this machine. The registry this project installs from does not serve
// every platform build of Biome, so `npm install` cannot record them. This adds the missing entries
// (name, version, os, cpu, libc: enough for npm to skip them off-platform) to package-lock.json.
// Run it after `npm install` changes the lockfile: `npx node scripts/fix-lock-platforms.ts`.
import { readFileSync, writeFileSync } from 'node:fs';

const path = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(path, 'utf8')) as { packages: Record<string, Record<string, unknown>> };
const biome = lock.packages['node_modules/@biomejs/biome'];
const optional = (biome?.optionalDependencies ?? {}) as Record<string, string>;
const added: string[] = [];
for (const [name, version] of Object.entries(optional)) {
  const key = `node_modules/${name}`;
  if (lock.packages[key]) continue;
  const match = /^@biomejs\/cli-([a-z0-9]+)-([a-z0-9]+?)(-musl)?$/.exec(name);
  if (!match) throw new Error(`unexpected platform package name ${name}`);
  const [, os, cpu, musl] = match;
  lock.packages[key] = {
    version,
    cpu: [cpu],
    dev: true,
    license: 'MIT OR Apache-2.0',
    optional: true,
    os: [os],
    ...(os === 'linux' ? { libc: [musl ? 'musl' : 'glibc'] } : {}),
  };
  added.push(name);
}
const sorted = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
writeFileSync(path, `${JSON.stringify({ ...lock, packages: sorted }, null, 2)}\n`);
console.log(added.length ? `added lock entries: ${added.join(', ')}` : 'lockfile already complete');
