#!/usr/bin/env node
// The `oncely` command. Built (dist/ present), it runs dist/cli.js. In a checkout without a build it
// runs the TypeScript sources: Node strips the types, and the workspace packages resolve to their
// src/ under the `oncely:source` condition, which a resolve hook adds here. One process either way,
// so signals, exit codes and the pid are the command's own (a wrapper process would leave its child
// running when it is killed).
import { existsSync } from 'node:fs';
import module from 'node:module';

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

let code;
try {
  const { main } = await load();
  code = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`oncely: ${error instanceof Error ? error.message : String(error)}\n`);
  code = 1;
}
// Exit once stdout is flushed: a store client or a timer left behind must not keep the process alive.
process.stdout.write('', () => process.exit(code));
