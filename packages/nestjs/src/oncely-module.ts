/**
 * `OncelyModule`: the options (given, or made by a factory from the app's own providers) and the
 * one interceptor, registered for the whole app. Written without decorator syntax (the decorators
 * are called as functions and the interceptor is made by a factory provider), so it needs neither
 * `experimentalDecorators` nor `emitDecoratorMetadata` from whatever compiles or strips it.
 */

import { type DynamicModule, type InjectionToken, Module, type ModuleMetadata } from '@nestjs/common';
import { APP_INTERCEPTOR, MetadataScanner, ModulesContainer, Reflector } from '@nestjs/core';
import { OncelyError } from '@oncely/core';
import { OncelyInterceptor } from './interceptor.ts';
import { type OncelyModuleOptions, resolveModuleOptions } from './options.ts';
import { Routes } from './routes.ts';

/** The injection token of the module's options (what `forRoot` was given or the factory returned). */
export const ONCELY_OPTIONS = Symbol.for('@oncely/nestjs.options');

/** Options of `OncelyModule.forRootAsync()`: a factory of the options, with the providers it injects. */
export interface OncelyModuleAsyncOptions {
  /** Modules whose exported providers the factory injects (the one that provides your Redis client). */
  imports?: ModuleMetadata['imports'];
  /** The tokens of the factory's arguments, in order. */
  inject?: InjectionToken[];
  /** Makes the options, e.g. `(redis: Redis) => ({ store: redisStore({ client: redis }) })`. */
  useFactory: (...args: never[]) => OncelyModuleOptions | Promise<OncelyModuleOptions>;
}

/**
 * Idempotency-Key handling for a Nest app on Express or Fastify. Import it once, in the root
 * module: it is global, and it registers one interceptor for every route, which runs after your
 * guards. Create the app with `rawBody: true`: the fingerprint covers the request's exact bytes.
 * @example
 * @Module({ imports: [OncelyModule.forRoot({ store: memoryStore(), scope: (request) => accountOf(request) })] })
 * export class AppModule {}
 * const app = await NestFactory.create(AppModule, { rawBody: true });
 */
// biome-ignore lint/complexity/noStaticOnlyClass: a Nest module is a class; its dynamic forms come from static methods
export class OncelyModule {
  /** The module with these options. */
  static forRoot(options: OncelyModuleOptions): DynamicModule {
    resolveModuleOptions(options); // a bad option fails here, where it was written
    return OncelyModule.#module([], { provide: ONCELY_OPTIONS, useValue: options });
  }

  /**
   * The module with options made by a factory, from the providers it injects: a store on the
   * Redis client or PostgreSQL pool your app already has.
   * @example
   * OncelyModule.forRootAsync({
   *   imports: [RedisModule],
   *   inject: [REDIS],
   *   useFactory: (redis: Redis) => ({ store: redisStore({ client: redis }), scope: accountOf }),
   * });
   */
  static forRootAsync(options: OncelyModuleAsyncOptions): DynamicModule {
    if (options === null || typeof options !== 'object' || typeof options.useFactory !== 'function') {
      throw new OncelyError(
        'ERR_ONCELY_INVALID_OPTION',
        'forRootAsync expects { useFactory, inject?, imports? }',
      );
    }
    const { imports = [], inject = [], useFactory } = options;
    return OncelyModule.#module(imports, {
      provide: ONCELY_OPTIONS,
      useFactory: useFactory as (...args: unknown[]) => OncelyModuleOptions,
      inject,
    });
  }

  static #module(
    imports: NonNullable<ModuleMetadata['imports']>,
    options: NonNullable<ModuleMetadata['providers']>[number],
  ): DynamicModule {
    return {
      module: OncelyModule,
      global: true,
      imports: [...imports, OncelyInterceptorModule],
      providers: [options],
      exports: [ONCELY_OPTIONS],
    };
  }
}
Module({})(OncelyModule);

/**
 * Holds the app's one interceptor. A static module is instantiated once however often it is
 * imported, so importing `OncelyModule.forRoot()` from several modules still registers one
 * interceptor, and a request is decided once.
 */
class OncelyInterceptorModule {}
Module({
  providers: [
    {
      provide: APP_INTERCEPTOR,
      inject: [ONCELY_OPTIONS, Reflector, ModulesContainer],
      useFactory: (options: OncelyModuleOptions, reflector: Reflector, modules: ModulesContainer) => {
        const configured = [...modules.values()].filter(
          (module) => module.metatype === OncelyModule && module.providers.has(ONCELY_OPTIONS),
        );
        if (configured.length > 1) {
          throw new OncelyError(
            'ERR_ONCELY_INVALID_OPTION',
            `OncelyModule.forRoot()/forRootAsync() is imported ${configured.length} times with options of its own: import it once, in the root module (it is global), or import the same module object everywhere.`,
          );
        }
        const resolved = resolveModuleOptions(options);
        const routes = new Routes(resolved, reflector);
        const scanner = new MetadataScanner();
        routes.prepare(modules, (prototype) => scanner.getAllMethodNames(prototype));
        return new OncelyInterceptor(routes, resolved);
      },
    },
  ],
})(OncelyInterceptorModule);
