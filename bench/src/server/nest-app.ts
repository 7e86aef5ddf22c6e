/**
 * NestJS 12 on Express or on Fastify: bare, or with @oncely/nestjs. The bench runs its servers under
 * Node's type stripping, which runs no decorators, so Nest's decorators are called as the
 * functions they are (what `experimentalDecorators` compiles `@Post()` to); the app is the same.
 */
import 'reflect-metadata';
import { Body, Controller, Headers, HttpCode, Module, Post, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { OncelyModule } from '@oncely/nestjs';
import { createPayment, workMsOf } from './handler.ts';
import type { ServerSpec } from './spec.ts';
import { openStore } from './stores.ts';

class PaymentsController {
  create(body: unknown, key: string | undefined, workMs: string | undefined) {
    return createPayment({ key, body, workMs: workMsOf(workMs) });
  }
}
Controller()(PaymentsController);
const create = Object.getOwnPropertyDescriptor(PaymentsController.prototype, 'create')!;
for (const decorate of [Post('payments'), HttpCode(201)])
  decorate(PaymentsController.prototype, 'create', create);
Body()(PaymentsController.prototype, 'create', 0);
Headers('idempotency-key')(PaymentsController.prototype, 'create', 1);
Headers('x-work-ms')(PaymentsController.prototype, 'create', 2);

export async function startNest(spec: ServerSpec): Promise<{ port: number; close(): Promise<void> }> {
  let closeStore = async () => {};
  const imports: unknown[] = [];
  if (spec.variant === 'oncely') {
    const opened = await openStore(spec);
    closeStore = opened.close;
    imports.push(OncelyModule.forRoot({ store: opened.store }));
  }
  class AppModule {}
  Module({ imports: imports as never[], controllers: [PaymentsController] })(AppModule);
  const adapter = spec.framework === 'nest-fastify' ? new FastifyAdapter() : new ExpressAdapter();
  // rawBody: @oncely/nestjs fingerprints the exact bytes; the bare app gets the same parser setup.
  const app = await NestFactory.create(AppModule as Type<unknown>, adapter, { rawBody: true, logger: false });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address();
  if (!address || typeof address === 'string') throw new Error('nest: no port');
  return {
    port: address.port,
    close: async () => {
      await app.close();
      await closeStore();
    },
  };
}
