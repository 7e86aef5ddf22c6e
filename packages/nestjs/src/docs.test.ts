// The TypeScript blocks of docs/nestjs.md and the package README compile as a Nest app is compiled
// (experimentalDecorators, emitDecoratorMetadata, strict), against the real packages. A block may
// leave out its imports and use the app's own pieces (a guard, a service): a shared prelude gives
// those, so a block that no longer matches the API fails here.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { promisify } from 'node:util';

const root = join(import.meta.dirname, '..', '..', '..');
const pages = [join(root, 'docs', 'nestjs.md'), join(import.meta.dirname, '..', 'README.md')];

// What a block that shows only its own lines takes from the packages.
const IMPORTS = `import { Body, type CanActivate, Controller, type ExecutionContext, HttpCode, Injectable, Module, Post, Req, UnauthorizedException, UseGuards } from '@nestjs/common';
import { HOUR } from '@oncely/core';
import { Idempotent, idempotencyOf, OncelyModule } from '@oncely/nestjs';
import { redisStore } from '@oncely/redis';
import { Redis } from 'ioredis';
`;
// The app's own pieces the blocks use, declared, not written.
const PRELUDE = `import type { CanActivate, ExecutionContext } from '@nestjs/common';
import type { Store } from '@oncely/core';
declare global {
  class ApiKeyGuard implements CanActivate { canActivate(context: ExecutionContext): boolean; }
  interface CreatePayment { amount: number; currency: string; }
  class PaymentsService { charge(body: CreatePayment, options?: { signal?: AbortSignal }): Promise<unknown>; }
  class ApiKeys { accountOf(apiKey: unknown): Promise<{ id: string } | undefined>; }
  interface Account { accountId: string; }
  const store: Store;
  const REDIS: string;
  function accountOf(request: unknown): string | undefined;
  function charge(body: CreatePayment): Promise<unknown>;
}
export {};
`;

it('every TypeScript block of docs/nestjs.md and the README type-checks', { timeout: 120_000 }, async () => {
  const blocks = pages.flatMap((page) =>
    [...readFileSync(page, 'utf8').matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!),
  );
  assert.ok(blocks.length >= 4, `found ${blocks.length} blocks`);
  const cache = join(root, 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, 'oncely-nestjs-docs-'));
  try {
    writeFileSync(join(dir, 'prelude.d.ts'), PRELUDE);
    blocks.forEach((block, i) => {
      const own = /^import /m.test(block);
      writeFileSync(join(dir, `block-${i + 1}.ts`), `${own ? '' : IMPORTS}${block}\nexport {};\n`);
    });
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: join(root, 'tsconfig.base.json'),
        compilerOptions: {
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
          erasableSyntaxOnly: false,
          noEmit: true,
          noUnusedLocals: false,
          // The blocks resolve the packages as an app does, from source here.
          customConditions: ['oncely:source'],
        },
        include: ['*.ts'],
      }),
    );
    const tsc = join(
      dirname(createRequire(import.meta.url).resolve('typescript/package.json')),
      'bin',
      'tsc',
    );
    try {
      await promisify(execFile)(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { cwd: root });
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      assert.fail(`a docs block does not compile:\n${stdout}${stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
