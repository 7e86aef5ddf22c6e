/**
 * The Nest apps of the tests are written the way a Nest user writes them, with decorators on
 * classes, methods and constructor parameters, and compiled the way a Nest app is compiled:
 * `experimentalDecorators` and `emitDecoratorMetadata`, which Node's type stripping does not do.
 * So the tests compile them (test/tsconfig.json, type-checked, well under a second) into a folder
 * of their own under node_modules/.cache, where the imports of the compiled files resolve (Nest,
 * and `@oncely/nestjs` itself, from source under `--conditions=oncely:source`).
 */

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const root = join(import.meta.dirname, '..', '..', '..');
const project = join(import.meta.dirname, '..', 'test', 'tsconfig.json');

/** The compiled test apps: `load(name)` imports `test/<name>.ts` as compiled; `remove()` deletes them. */
export interface TestBuild {
  load<T>(name: string): Promise<T>;
  remove(): void;
}

/** Compile packages/nestjs/test/*.ts; a type error fails with the compiler's report. */
export async function buildTestApps(): Promise<TestBuild> {
  const cache = join(root, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const outDir = mkdtempSync(join(cache, 'oncely-nestjs-test-'));
  writeFileSync(join(outDir, 'package.json'), '{ "type": "module" }\n');
  const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
  try {
    await promisify(execFile)(process.execPath, [tsc, '-p', project, '--outDir', outDir]);
  } catch (error) {
    rmSync(outDir, { recursive: true, force: true });
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`the Nest test apps do not compile:\n${stdout}${stderr}`, { cause: error });
  }
  return {
    load: async <T>(name: string) =>
      (await import(pathToFileURL(join(outDir, 'test', `${name}.js`)).href)) as T,
    remove: () => rmSync(outDir, { recursive: true, force: true }),
  };
}
