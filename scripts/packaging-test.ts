// The packaging test: what a user installs from the registry, checked before it gets there. Packs every
// public package (after `npm run build`), installs the tarballs with the frameworks from the registry into
// a project outside the repo, type-checks an app (packages/packaging/app) under `moduleResolution`
// `nodenext` and `bundler` with this repo's TypeScript and with TypeScript 5, and runs it, plus an
// import and a require() of every entry point, on the lowest supported Node (from the registry's `node`
// package) and on this Node (24). Below the supported range, `oncely --help` must still work and the CLI
// and `@oncely/sqlite` must say in one line which Node they need.
//
//   npm run build && npm run test:packaging          (KEEP=1 keeps the scratch project and prints its path)
import { execFile, execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

/** The lowest Node of `engines` (`^22.16.0 || >=24`), and one just below it (node:sqlite without isTransaction). */
const LOWEST_NODE = '22.16.0';
const BELOW_NODE = '22.15.1';
const RANGE = '^22.16.0 || >=24';
/** Each command's limit: a hung install or server fails the test instead of holding CI. */
const TIMEOUT_MS = 240_000;

const exec = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
const started = performance.now();

interface PackageJson {
  name: string;
  version: string;
  private?: boolean;
  bin?: Record<string, string>;
  exports?: Record<string, unknown>;
  peerDependencies?: Record<string, string>;
}
interface PackResult {
  name: string;
  filename: string;
  files: Array<{ path: string }>;
}

/** Run a command; on failure throw with everything it printed. */
async function run(
  file: string,
  args: readonly string[],
  cwd: string,
): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await exec(file, args, { cwd, timeout: TIMEOUT_MS, maxBuffer: 64 << 20 });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    return {
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? String(error),
      code: typeof e.code === 'number' ? e.code : 1,
    };
  }
}

async function ok(file: string, args: readonly string[], cwd: string): Promise<string> {
  const result = await run(file, args, cwd);
  if (result.code !== 0) {
    throw new Error(
      `${file} ${args.join(' ')} (in ${cwd}) exited ${result.code}\n${result.stdout}${result.stderr}`,
    );
  }
  return result.stdout;
}

async function step<T>(name: string, work: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const value = await work();
  console.log(`packaging: ${name} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  return value;
}

function fail(message: string): never {
  throw new Error(message);
}

/** Every string a package's `exports` maps a subpath to, but the repo-only `oncely:source` one. */
function exportTargets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => (k === 'oncely:source' ? [] : exportTargets(v)));
}

const { workspaces } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  workspaces: string[];
};
const published = workspaces
  .map((dir) => ({
    dir,
    pkg: JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as PackageJson,
  }))
  .filter(({ pkg }) => !pkg.private);
for (const { dir, pkg } of published) {
  if (!existsSync(join(root, dir, 'dist'))) fail(`${pkg.name}: no dist/; run \`npm run build\` first`);
}
/** Every entry point a user can import: `@oncely/core`, `@oncely/core/node`, ... */
const entries = published.flatMap(({ pkg }) =>
  Object.keys(pkg.exports ?? { '.': '' })
    .filter((subpath) => subpath !== './package.json')
    .map((subpath) => (subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`)),
);

const scratch = mkdtempSync(join(tmpdir(), 'oncely-packaging-'));
const tarballs = join(scratch, 'tarballs');
const app = join(scratch, 'app');
mkdirSync(tarballs);
try {
  const packed = await step(`npm pack of ${published.length} packages`, async () => {
    const args = ['pack', '--json', '--ignore-scripts', '--pack-destination', tarballs];
    const out = await ok('npm', [...args, ...published.map(({ pkg }) => `--workspace=${pkg.name}`)], root);
    return JSON.parse(out) as PackResult[];
  });
  for (const { dir, pkg } of published) {
    const result = packed.find((p) => p.name === pkg.name) ?? fail(`${pkg.name} was not packed`);
    const files = new Set(result.files.map((f) => f.path));
    const wanted = [
      'package.json',
      'LICENSE',
      'dist/index.js',
      'dist/index.d.ts',
      ...Object.values(pkg.bin ?? {}),
    ];
    if (existsSync(join(root, dir, 'README.md'))) wanted.push('README.md');
    for (const target of Object.values(pkg.exports ?? {}).flatMap(exportTargets)) wanted.push(target);
    for (const file of wanted) {
      if (!files.has(file.replace(/^\.\//, ''))) fail(`${result.filename} lacks ${file}`);
    }
    const tests = [...files].filter((f) => /\.test\.|(^|\/)test-[^/]*$/.test(f));
    if (tests.length > 0) fail(`${result.filename} ships test files: ${tests.join(', ')}`);
  }

  const peers = new Map<string, string>();
  for (const { pkg } of published) {
    for (const [name, range] of Object.entries(pkg.peerDependencies ?? {})) peers.set(name, range);
  }
  const typescript = JSON.parse(readFileSync(join(root, 'node_modules/typescript/package.json'), 'utf8')) as {
    version: string;
  };
  const nodeDir = (version: string): string => join(scratch, `node-${version}`);
  await step(
    `npm install of the tarballs, ${[...peers.keys()].join(', ')}, TypeScript ${typescript.version} and 5, Node ${LOWEST_NODE} and ${BELOW_NODE}`,
    async () => {
      mkdirSync(app);
      cpSync(join(root, 'packages/packaging/app'), app, { recursive: true });
      writeFileSync(
        join(app, 'package.json'),
        `${JSON.stringify({ name: 'oncely-packaging-app', private: true, type: 'module' }, null, 2)}\n`,
      );
      const quiet = ['--no-audit', '--no-fund', '--loglevel=error'];
      const installs = [
        ok(
          'npm',
          [
            'install',
            ...quiet,
            ...readdirSync(tarballs).map((f) => join(tarballs, f)),
            ...[...peers].map(([name, range]) => `${name}@${range}`),
            '@types/express',
            '@types/node@22',
            `typescript@${typescript.version}`,
            'typescript5@npm:typescript@5',
          ],
          app,
        ),
      ];
      for (const version of [LOWEST_NODE, BELOW_NODE]) {
        mkdirSync(nodeDir(version));
        writeFileSync(join(nodeDir(version), 'package.json'), '{ "private": true }\n');
        installs.push(ok('npm', ['install', ...quiet, `node@${version}`], nodeDir(version)));
      }
      await Promise.all(installs);
    },
  );
  // Every @oncely package must come from a tarball: a sibling range that a tarball does not satisfy
  // would quietly pull that package from the registry instead.
  const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { resolved?: string; version?: string }>;
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!/(^|\/)node_modules\/@oncely\//.test(path)) continue;
    if (path.split('node_modules/').length > 2) fail(`${path}: a second copy of an @oncely package`);
    if (!entry.resolved?.startsWith('file:'))
      fail(`${path} was installed from ${entry.resolved}, not a tarball`);
  }

  await step('tsc: moduleResolution nodenext and bundler, TypeScript 7 and 5', async () => {
    const checks = [];
    for (const compiler of ['typescript', 'typescript5']) {
      for (const config of ['tsconfig.nodenext.json', 'tsconfig.bundler.json']) {
        const tsc = join(app, 'node_modules', compiler, 'bin', 'tsc');
        checks.push(ok(process.execPath, [tsc, '-p', config, '--noEmit'], app));
      }
    }
    await Promise.all(checks);
    await ok(
      process.execPath,
      [join(app, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.nodenext.json'],
      app,
    );
  });

  // Every entry point, imported and required (require(esm): CommonJS apps load the packages so, which
  // a top-level await in any module would break).
  writeFileSync(
    join(app, 'entries.mjs'),
    `${entries.map((e, i) => `import * as m${i} from '${e}';`).join('\n')}\n` +
      `for (const [name, mod] of Object.entries({ ${entries.map((e, i) => `'${e}': m${i}`).join(', ')} })) {\n` +
      `  if (Object.keys(mod).length === 0) throw new Error(name + ' exports nothing');\n}\n` +
      `console.log('imported ${entries.length} entry points');\n`,
  );
  writeFileSync(
    join(app, 'entries.cjs'),
    `const entries = ${JSON.stringify(entries)};\n` +
      `for (const name of entries) {\n` +
      `  if (Object.keys(require(name)).length === 0) throw new Error(name + ' exports nothing');\n}\n` +
      `for (const name of ${JSON.stringify(published.map(({ pkg }) => pkg.name))}) require(name + '/package.json');\n` +
      `console.log('required ' + entries.length + ' entry points and their package.json');\n`,
  );
  const lowest = join(nodeDir(LOWEST_NODE), 'node_modules/.bin/node');
  for (const node of [lowest, process.execPath]) {
    const version = (await ok(node, ['--version'], app)).trim();
    await step(`Node ${version}: the app, every entry point imported and required`, async () => {
      // --no-warnings: node:sqlite is an experimental feature on Node 22, which it says once per process.
      for (const script of ['dist/app.js', 'entries.mjs', 'entries.cjs']) {
        console.log(`  ${(await ok(node, ['--no-warnings', script], app)).trim()}`);
      }
    });
  }

  // Below the range: the registry's Node just below it, and the machine's own Node if it is older.
  const belowNodes = [join(nodeDir(BELOW_NODE), 'node_modules/.bin/node'), ...systemNodesBelowRange()];
  const bin = join(app, 'node_modules/@oncely/gateway/bin/oncely.js');
  for (const node of belowNodes) {
    const version = (await ok(node, ['--version'], app)).trim();
    await step(`Node ${version} (below the range): one-line messages, --help still works`, async () => {
      const help = await run(node, [bin, '--help'], app);
      if (help.code !== 0 || !help.stdout.includes('Usage: oncely'))
        fail(`oncely --help on ${version}: ${help.stderr}`);
      const proxy = await run(node, [bin, 'proxy', '--upstream', 'http://127.0.0.1:9'], app);
      const line = `oncely: needs Node.js ${RANGE} (this is ${version})\n`;
      if (proxy.code !== 1 || proxy.stderr !== line) fail(`oncely proxy on ${version}: ${proxy.stderr}`);
      console.log(`  oncely --help: usage; oncely proxy: ${line.trim()}`);
      const sqlite = await run(
        node,
        ['--no-warnings', '--input-type=module', '-e', "import '@oncely/sqlite'"],
        app,
      );
      const message = sqlite.stderr.split('\n').find((l) => /^\w*Error/.test(l)) ?? sqlite.stderr;
      if (sqlite.code === 0) fail(`@oncely/sqlite loaded on ${version}`);
      // Also where node:sqlite is missing altogether (Node 20): the store loads it only when a store
      // is made, so the one-line check of index.ts always runs first.
      if (message.includes(`@oncely/sqlite needs Node.js ${RANGE} for node:sqlite (this is ${version})`)) {
        console.log(`  import '@oncely/sqlite': ${message}`);
      } else {
        fail(`import '@oncely/sqlite' on ${version}: ${sqlite.stderr}`);
      }
    });
  }
  if (belowNodes.length === 1)
    console.log('packaging: no Node 20 on this machine, only the registry Node below the range checked');
} finally {
  if (process.env.KEEP) console.log(`packaging: kept ${scratch}`);
  else rmSync(scratch, { recursive: true, force: true });
}
console.log(`packaging: ok in ${((performance.now() - started) / 1000).toFixed(1)} s`);

/** `node` binaries on PATH (outside node_modules) older than the supported range: the machine's own. */
function systemNodesBelowRange(): string[] {
  const found = new Map<string, string>();
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const node = join(dir, 'node');
    if (dir === '' || dir.includes('node_modules') || !existsSync(node)) continue;
    found.set(realpathSync(node), node);
  }
  return [...found.values()].filter((node) => {
    let version: string;
    try {
      version = execFileSync(node, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
    } catch {
      return false;
    }
    const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
    return major < 22 || (major === 22 && minor < 16) || major === 23;
  });
}
