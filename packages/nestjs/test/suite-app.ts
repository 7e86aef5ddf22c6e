/**
 * The routes of the HTTP behaviour suite (`@oncely/conformance`) as a Nest controller, written the
 * way a Nest user writes one: handlers return values or a `StreamableFile`, `/large` sends its own
 * response through `@Res()`, `/throw` leaves its error to Nest's exception filter. The same
 * controller runs on Express and on Fastify; headers and statuses go through Nest's HTTP adapter.
 * The tenant comes from a guard, as an authentication guard would set it.
 */
import 'reflect-metadata';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Body,
  type CanActivate,
  Controller,
  type ExecutionContext,
  Get,
  HttpCode,
  Inject,
  Injectable,
  Module,
  Param,
  Patch,
  Post,
  Query,
  type RawBodyRequest,
  Req,
  Res,
  StreamableFile,
} from '@nestjs/common';
import { APP_GUARD, HttpAdapterHost } from '@nestjs/core';
import type { HttpTestSetup, RunningServer, TestApp } from '@oncely/conformance';
import { Idempotent, idempotencyOf, OncelyModule } from '@oncely/nestjs';
import { type Platform, serve } from './serve.ts';

const COUNTERS = Symbol('counters');
const NEVER_ABORTED = new AbortController().signal;

interface TenantRequest {
  headers: Record<string, string | string[] | undefined>;
  tenant?: string;
}

/** Sets `request.tenant`, as an authentication guard sets `request.user`. */
@Injectable()
export class TenantGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<TenantRequest>();
    const tenant = request.headers['x-tenant'];
    if (typeof tenant === 'string') request.tenant = tenant;
    return true;
  }
}

@Controller()
export class SuiteController {
  constructor(
    @Inject(COUNTERS) private readonly counters: TestApp,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  private get http() {
    return this.adapterHost.httpAdapter;
  }

  @Post('payments')
  @HttpCode(201)
  payments(@Body() body: { amount?: number } | undefined, @Res({ passthrough: true }) res: unknown) {
    const n = this.counters.executed('payments');
    this.http.setHeader(res, 'Location', `/payments/pay_${n}`);
    this.http.setHeader(res, 'X-Custom', `custom-${n}`);
    this.http.appendHeader(res, 'Set-Cookie', `session=s${n}`);
    return { id: `pay_${n}`, amount: body?.amount ?? null, n };
  }

  @Patch('payments')
  patch() {
    return { n: this.counters.executed('patch') };
  }

  @Get('payments')
  list() {
    return { n: this.counters.executed('get') };
  }

  @Post('required')
  @HttpCode(201)
  @Idempotent({ required: true })
  required() {
    return { n: this.counters.executed('required') };
  }

  @Post('status/:code')
  status(@Param('code') code: string, @Res({ passthrough: true }) res: unknown) {
    this.http.status(res, Number(code));
    return { n: this.counters.executed('status') };
  }

  @Post('throw')
  throws(): never {
    this.counters.executed('throw');
    throw new Error('handler failed');
  }

  @Post('binary')
  @HttpCode(200)
  binary() {
    this.counters.executed('binary');
    return new StreamableFile(Buffer.from(this.counters.binary), { type: 'application/octet-stream' });
  }

  @Post('empty')
  @HttpCode(204)
  empty(): void {
    this.counters.executed('empty');
  }

  @Post('stream')
  @HttpCode(200)
  stream() {
    this.counters.executed('stream');
    const chunks = this.counters.chunks;
    const body = Readable.from(
      (async function* () {
        for (const [i, chunk] of chunks.entries()) {
          if (i > 0) await sleep(10);
          yield Buffer.from(chunk);
        }
      })(),
    );
    return new StreamableFile(body, { type: 'text/plain' });
  }

  /** Sends its own response: Nest leaves a handler that takes `@Res()` to it. */
  @Post('large')
  large(@Query('size') size: string, @Res() res: unknown): void {
    this.counters.executed('large');
    const body = Buffer.alloc(Number(size ?? 0), 'x');
    this.http.reply(res, new StreamableFile(body, { type: 'application/octet-stream' }), 200);
  }

  @Post('slow')
  @HttpCode(201)
  async slow(@Query('ms') ms: string, @Req() req: object) {
    const n = this.counters.executed('slow');
    const signal = idempotencyOf(req)?.signal ?? NEVER_ABORTED;
    await sleep(Number(ms ?? 0), undefined, { signal }).catch(() => {});
    this.counters.signal(signal.aborted);
    return { n, aborted: signal.aborted };
  }

  @Post('deaf')
  @HttpCode(201)
  async deaf(@Query('ms') ms: string) {
    const n = this.counters.executed('deaf');
    await sleep(Number(ms ?? 0)); // deaf to the signal: work that ignores its bound
    return { n };
  }

  @Post('echo')
  @HttpCode(200)
  echo(@Req() req: RawBodyRequest<{ headers: Record<string, string | undefined> }>) {
    this.counters.executed('echo');
    const type = req.headers['content-type'] ?? 'application/octet-stream';
    return new StreamableFile(req.rawBody ?? Buffer.alloc(0), { type });
  }
}

/** The suite's server on `platform`: a fresh app per call, on the store and options it is given. */
export function startSuiteServer(platform: Platform) {
  return async ({ options, app: counters }: HttpTestSetup): Promise<RunningServer> => {
    @Module({
      imports: [
        OncelyModule.forRoot({ ...options, scope: (request) => request.tenant as string | undefined }),
      ],
      controllers: [SuiteController],
      providers: [
        { provide: COUNTERS, useValue: counters },
        { provide: APP_GUARD, useClass: TenantGuard },
      ],
    })
    class SuiteModule {}
    const { url, close } = await serve(platform, SuiteModule);
    return { url, close };
  };
}
