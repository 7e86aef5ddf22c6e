/** Start a Nest app on either platform on 127.0.0.1 on a free port, as the tests need it. */
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import type { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';

export type Platform = 'express' | 'fastify';

export interface Running {
  app: INestApplication;
  url: string;
  close: () => Promise<void>;
}

/**
 * Create the app with `rawBody: true`, as @oncely/nestjs requires, and a parser for raw bytes
 * (`application/octet-stream`) that keeps them too; then listen.
 */
export async function serve(
  platform: Platform,
  module: Type<unknown>,
  options: { rawBody?: boolean } = {},
): Promise<Running> {
  const settings = {
    rawBody: options.rawBody ?? true,
    logger: false as const,
    abortOnError: false,
    // close() must not wait for the keep-alive connections of fetch.
    forceCloseConnections: true,
  };
  let app: INestApplication;
  if (platform === 'express') {
    const express = await NestFactory.create<NestExpressApplication>(module, new ExpressAdapter(), settings);
    express.useBodyParser('raw');
    app = express;
  } else {
    const fastify = await NestFactory.create<NestFastifyApplication>(module, new FastifyAdapter(), settings);
    fastify.useBodyParser('application/octet-stream');
    app = fastify;
  }
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}`, close: () => app.close() };
}
