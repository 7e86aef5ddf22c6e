/**
 * Nest apps for what the HTTP behaviour suite does not cover: handlers that write their response
 * through `@Res()`, a `StreamableFile` with its headers, `HttpException`s and a custom exception
 * filter, a pipe that refuses a body, `@Idempotent()` on controllers and routes, a scope from an
 * authentication guard, the store from a provider through `forRootAsync`, and the module imported
 * more than once. Written as a Nest user writes them.
 */
import 'reflect-metadata';
import {
  type ArgumentsHost,
  Body,
  type CanActivate,
  Catch,
  Controller,
  type ExceptionFilter,
  type ExecutionContext,
  Header,
  HttpCode,
  HttpException,
  Inject,
  Injectable,
  Module,
  NotFoundException,
  type PipeTransform,
  Post,
  Put,
  Req,
  Res,
  StreamableFile,
  UnauthorizedException,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { APP_FILTER, BaseExceptionFilter, HttpAdapterHost, ModulesContainer } from '@nestjs/core';
import {
  Idempotent,
  idempotencyOf,
  OncelyInterceptor,
  OncelyModule,
  type OncelyModuleOptions,
} from '@oncely/nestjs';
import { redisStore } from '@oncely/redis';
import { connectRedis } from '@oncely/test-stores';
import { type Platform, serve } from './serve.ts';

/** How often each handler ran, and every exception Nest's filters saw. */
export class Counts {
  readonly runs = new Map<string, number>();
  readonly exceptions: unknown[] = [];
  run(name: string): number {
    const n = (this.runs.get(name) ?? 0) + 1;
    this.runs.set(name, n);
    return n;
  }
  of(name: string): number {
    return this.runs.get(name) ?? 0;
  }
}

const COUNTS = Symbol('counts');

/** Nest's own filter, recording what it is handed: proves the filters still answer. */
@Catch()
export class RecordingFilter extends BaseExceptionFilter {
  @Inject(COUNTS) private readonly counts!: Counts;
  override catch(exception: unknown, host: ArgumentsHost): void {
    this.counts.exceptions.push(exception);
    super.catch(exception, host);
  }
}

export class PaymentDeclined extends Error {}

/** A filter of the app's own, for one error. */
@Catch(PaymentDeclined)
export class DeclinedFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}
  catch(exception: PaymentDeclined, host: ArgumentsHost): void {
    const { httpAdapter } = this.adapterHost;
    httpAdapter.reply(host.switchToHttp().getResponse(), { declined: exception.message }, 402);
  }
}

/** A validation pipe: an amount is required. */
export class AmountPipe implements PipeTransform {
  transform(value: { amount?: unknown } | undefined) {
    if (typeof value?.amount !== 'number') throw new HttpException('amount must be a number', 400);
    return value;
  }
}

/** Fastify's reply, or Express's response: what `@Res()` gives a handler. */
interface FastifyLike {
  code(status: number): FastifyLike;
  header(name: string, value: string): FastifyLike;
  send(body: string): unknown;
}
interface ExpressLike {
  status(status: number): ExpressLike;
  set(name: string, value: string): ExpressLike;
  send(body: string): unknown;
}
type RawReply = FastifyLike | ExpressLike;
const isFastify = (reply: RawReply): reply is FastifyLike => 'code' in reply;

@Controller('f')
export class FeatureController {
  constructor(@Inject(COUNTS) private readonly counts: Counts) {}

  /** Writes its response itself, in the platform's own API. */
  @Post('by-hand')
  byHand(@Res() res: RawReply): void {
    const n = this.counts.run('by-hand');
    if (isFastify(res)) {
      res.code(201).header('x-by-hand', `n${n}`).header('content-type', 'text/plain').send(`made ${n}`);
    } else {
      res.status(201).set('x-by-hand', `n${n}`).set('content-type', 'text/plain').send(`made ${n}`);
    }
  }

  @Post('file')
  @HttpCode(200)
  file() {
    const n = this.counts.run('file');
    const bytes = Buffer.from(`%PDF-1.7 receipt ${n}`);
    return new StreamableFile(bytes, {
      type: 'application/pdf',
      disposition: `attachment; filename="receipt-${n}.pdf"`,
      length: bytes.byteLength,
    });
  }

  @Post('versioned')
  @Header('X-Api-Version', '2')
  versioned() {
    return { n: this.counts.run('versioned') };
  }

  @Post('not-found')
  notFound(): never {
    this.counts.run('not-found');
    throw new NotFoundException('no such account');
  }

  @Post('declined')
  @UseFilters(DeclinedFilter)
  declined(): never {
    throw new PaymentDeclined(`card declined ${this.counts.run('declined')}`);
  }

  @Post('validated')
  @HttpCode(201)
  validated(@Body(new AmountPipe()) body: { amount: number }) {
    return { n: this.counts.run('validated'), amount: body.amount };
  }

  @Post('off')
  @Idempotent(false)
  off() {
    return { n: this.counts.run('off') };
  }

  @Post('final')
  @Idempotent({ cache: 'final-errors' })
  final(@Res({ passthrough: true }) res: RawReply) {
    if (isFastify(res)) res.code(404);
    else res.status(404);
    return { n: this.counts.run('final') };
  }

  @Put('put')
  @Idempotent({ methods: ['PUT'] })
  put() {
    return { n: this.counts.run('put') };
  }

  /** A content type no parser of Express's reads: the handler reads the stream (Fastify parses text itself). */
  @Post('text')
  @HttpCode(200)
  async text(@Req() req: AsyncIterable<Buffer> & { body?: unknown }) {
    this.counts.run('text');
    if (typeof req.body === 'string') return `got ${req.body}`;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk);
    return `got ${Buffer.concat(chunks).toString()}`;
  }

  @Post('signal')
  signal(@Req() req: object) {
    const context = idempotencyOf(req);
    return {
      n: this.counts.run('signal'),
      key: context?.key ?? null,
      aborted: context?.signal.aborted ?? null,
    };
  }
}

/** `@Idempotent()` on the controller, and a route that overrides it. */
@Controller('strict')
@Idempotent({ required: true })
export class StrictController {
  constructor(@Inject(COUNTS) private readonly counts: Counts) {}

  @Post('a')
  a() {
    return { n: this.counts.run('strict-a') };
  }

  @Post('b')
  @Idempotent({ required: false })
  b() {
    return { n: this.counts.run('strict-b') };
  }
}

/** The user an authentication guard finds. */
export interface Account {
  accountId: string;
}

/** Authentication as Passport's guards do it: `request.user`, or 401. */
@Injectable()
export class BearerGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string>; user?: Account }>();
    const token = /^Bearer (acct_\w+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (token === undefined) throw new UnauthorizedException();
    request.user = { accountId: token };
    return true;
  }
}

/** Every route behind the guard; the scope comes from the account it found. */
@Controller('accounts')
@UseGuards(BearerGuard)
export class AccountsController {
  constructor(@Inject(COUNTS) private readonly counts: Counts) {}

  @Post('transfers')
  @HttpCode(201)
  transfer(@Req() req: { user: Account }) {
    return { n: this.counts.run('transfer'), account: req.user.accountId };
  }

  /** The scope of this route alone: the account and the header naming a sub-account. */
  @Post('sub-transfers')
  @HttpCode(201)
  @Idempotent({
    scope: (request) => `${(request.user as Account).accountId}/${String(request.headers['x-sub-account'])}`,
  })
  subTransfer() {
    return { n: this.counts.run('sub-transfer') };
  }
}

/** The scope every test app uses: the account the guard found, if any. */
export const accountScope: OncelyModuleOptions['scope'] = (request) =>
  (request.user as Account | undefined)?.accountId;

/** The feature app with these module options. */
export async function startFeatures(
  platform: Platform,
  options: OncelyModuleOptions,
  settings: { rawBody?: boolean } = {},
) {
  const counts = new Counts();
  @Module({
    imports: [OncelyModule.forRoot({ scope: accountScope, ...options })],
    controllers: [FeatureController, StrictController, AccountsController],
    providers: [
      { provide: COUNTS, useValue: counts },
      { provide: APP_FILTER, useClass: RecordingFilter },
    ],
  })
  class FeaturesModule {}
  return { counts, ...(await serve(platform, FeaturesModule, settings)) };
}

// The store from the app's own provider: a Redis client other parts of the app use too.

export const REDIS = Symbol('redis');

@Module({
  providers: [{ provide: REDIS, useFactory: connectRedis }],
  exports: [REDIS],
})
export class RedisModule {}

@Controller('di')
export class DiController {
  constructor(@Inject(COUNTS) private readonly counts: Counts) {}

  @Post('charge')
  @HttpCode(201)
  async charge(@Req() req: object) {
    const n = this.counts.run('charge');
    await new Promise((resolve) => setTimeout(resolve, 300));
    return { n, key: idempotencyOf(req)?.key };
  }
}

/** The app whose store is made by `forRootAsync` from the Redis client `RedisModule` provides. */
export async function startWithRedisProvider(platform: Platform, prefix: string) {
  const counts = new Counts();
  @Module({
    imports: [
      OncelyModule.forRootAsync({
        imports: [RedisModule],
        inject: [REDIS],
        useFactory: (redis: Awaited<ReturnType<typeof connectRedis>>) => ({
          store: redisStore({ client: redis, prefix }),
        }),
      }),
    ],
    controllers: [DiController],
    providers: [{ provide: COUNTS, useValue: counts }],
  })
  class DiModule {}
  const running = await serve(platform, DiModule);
  const redis = running.app.get<Awaited<ReturnType<typeof connectRedis>>>(REDIS, { strict: false });
  return { counts, redis, ...running };
}

// The module imported more than once.

/** The Oncely interceptors the app registered (APP_INTERCEPTOR providers, in every module). */
export function interceptorsOf(app: { get<T>(token: unknown, options: { strict: false }): T }): number {
  const modules = app.get<ModulesContainer>(ModulesContainer, { strict: false });
  let count = 0;
  for (const module of modules.values()) {
    for (const wrapper of module.providers.values()) {
      if (wrapper.instance instanceof OncelyInterceptor) count++;
    }
  }
  return count;
}

/** One `forRoot()` module object, imported by the root module and by a feature module, and the plain class. */
export async function startImportedTwice(platform: Platform, options: OncelyModuleOptions) {
  const counts = new Counts();
  const oncely = OncelyModule.forRoot(options);
  @Module({
    imports: [oncely, OncelyModule],
    controllers: [DiController],
    providers: [{ provide: COUNTS, useValue: counts }],
    exports: [COUNTS],
  })
  class PaymentsModule {}
  @Module({ imports: [oncely, PaymentsModule] })
  class RootModule {}
  return { counts, ...(await serve(platform, RootModule)) };
}

/** Two `forRoot()` calls with options of their own: refused at start-up. */
export async function startConfiguredTwice(platform: Platform, options: OncelyModuleOptions) {
  @Module({ imports: [OncelyModule.forRoot(options)] })
  class FeatureModule {}
  @Module({ imports: [OncelyModule.forRoot(options), FeatureModule] })
  class RootModule {}
  return serve(platform, RootModule);
}

/** A route whose `@Idempotent()` the engine refuses: the app does not start. */
export async function startWithBadRoute(platform: Platform, options: OncelyModuleOptions) {
  @Controller()
  class BadController {
    @Post('short')
    @Idempotent({ ttlMs: 10 })
    short() {
      return {};
    }
  }
  @Module({ imports: [OncelyModule.forRoot(options)], controllers: [BadController] })
  class BadModule {}
  return serve(platform, BadModule);
}
