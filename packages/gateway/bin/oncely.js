#!/usr/bin/env node
// The `oncely` command. Built (dist/ present), it runs dist/cli.js. In a checkout without a build it
// runs the TypeScript sources: Node strips the types, and the workspace packages resolve to their
// src/ under the `oncely:source` condition, which a resolve hook adds here. One process either way,
// so signals, exit codes and the pid are the command's own (a wrapper process would leave its child
// running when it is killed).
import { existsSync } from 'node:fs';
import module from 'node:module';

/**
 * The Node versions this package supports, as in its package.json `engines`: `node:sqlite` (the
 * default store) with the `DatabaseSync` the SQLite store needs (`isTransaction`) came in 22.16 and
 * 24.0. Below them the CLI says so in one line instead of failing deep inside a store; `--help` and
 * `--version` still work.
 */
const SUPPORTED_NODE = '^22.16.0 || >=24';

function supportedNode() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major >= 24 || (major === 22 && minor >= 16);
}

/** True for the invocations that only print: `oncely`, `oncely help ...`, `--help`/`-h` anywhere, `--version`. */
function onlyPrints(argv) {
  const [command] = argv;
  return (
    command === undefined ||
    command === 'help' ||
    command === '-v' ||
    command === '--version' ||
    argv.includes('-h') ||
    argv.includes('--help')
  );
}

// Node 22 warns that SQLite is experimental the first time node:sqlite loads: once per gateway start,
// with a stack-trace hint, on stderr that operators read. The store is tested on the supported Node
// versions, so drop that one warning; every other warning is printed as usual.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type;
  const message = warning instanceof Error ? warning.message : String(warning);
  const name = warning instanceof Error ? warning.name : type;
  if (name === 'ExperimentalWarning' && message.startsWith('SQLite is an experimental feature')) return;
  return emitWarning.call(this, warning, ...rest);
};

const dist = new URL('../dist/cli.js', import.meta.url);
const source = new URL('../src/cli.ts', import.meta.url);

/** True when this process already resolves workspace packages to their sources (`--conditions=oncely:source`). */
function sourceCondition() {
  try {
    return import.meta.resolve('@oncely/core').endsWith('/src/index.ts');
  } catch {
    return false;
  }
}

async function load() {
  if (existsSync(source) && sourceCondition()) return import(source.href);
  if (existsSync(dist)) return import(dist.href);
  if (!existsSync(source))
    throw new Error('@oncely/gateway is installed without dist/ or src/: reinstall it');
  if (typeof module.registerHooks !== 'function' || !process.features.typescript) {
    throw new Error(
      `running oncely from a checkout needs Node 24 (this is ${process.version}): use \`npx oncely\`, ` +
        'which runs the Node the repository pins, or `npm run build` first',
    );
  }
  module.registerHooks({
    resolve(specifier, context, nextResolve) {
      return nextResolve(specifier, { ...context, conditions: [...context.conditions, 'oncely:source'] });
    },
  });
  return import(source.href);
}

const argv = process.argv.slice(2);
let code;
try {
  if (!supportedNode() && !onlyPrints(argv)) {
    throw new Error(`needs Node.js ${SUPPORTED_NODE} (this is ${process.version})`);
  }
  const { main } = await load();
  code = await main(argv);
} catch (error) {
  process.stderr.write(`oncely: ${error instanceof Error ? error.message : String(error)}\n`);
  code = 1;
}
// Exit once stdout is flushed: a store client or a timer left behind must not keep the process alive.
process.stdout.write('', () => process.exit(code));
