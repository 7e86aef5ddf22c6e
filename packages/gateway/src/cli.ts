/**
 * The `oncely` command line: `proxy`, `demo`, `keys`, and `check` (run by `@oncely/check` on this
 * module's stdout and stderr). The only module that writes to stdout and stderr, reads the
 * environment or handles signals; everything it runs gets a logger instead.
 * Exit codes: 0 done, 1 failed, 2 invalid usage.
 */

import { existsSync, readFileSync } from 'node:fs';
import { checkCommand } from '@oncely/check';
import { isOncelyError, type Store } from '@oncely/core';
import { loadProxyConfig, loadStoreConfig, type ProxyConfig, UsageError } from './config.ts';
import { startDemo } from './demo.ts';
import { createGateway, type GatewayLogEntry } from './gateway.ts';
import { checkHelp, demoHelp, keysHelp, mainHelp, proxyHelp } from './help.ts';
import { listKeys, NotSupportedError, purgeExpiredKeys, showKey } from './keys.ts';
import { type OpenedStore, openStore } from './store-from-url.ts';
import { probeStore } from './store-probe.ts';
import { describeStore } from './store-spec.ts';
import { formatDuration, formatSize } from './units.ts';

/** Where the CLI reads and writes; the process's own by default, replaceable in tests. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
};

const COMMANDS: Readonly<Record<string, () => string>> = {
  proxy: proxyHelp,
  keys: keysHelp,
  demo: demoHelp,
  check: checkHelp,
};

/** The package version, from package.json (src/ and dist/ both sit one level below it). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/**
 * Run the CLI with `argv` (without `node` and the script); resolves with the exit code once the
 * command is done (for `proxy`, once it has shut down).
 */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '-h':
      case '--help':
        io.stdout(mainHelp(version()));
        return 0;
      case 'help': {
        const topic = rest[0];
        if (topic === undefined) {
          io.stdout(mainHelp(version()));
          return 0;
        }
        const help = COMMANDS[topic];
        if (!help) throw new UsageError(`unknown command "${topic}"; commands are proxy, demo, keys, check`);
        io.stdout(help());
        return 0;
      }
      case '-v':
      case '--version':
        io.stdout(`${version()}\n`);
        return 0;
      case 'proxy':
        return await proxy(rest, io);
      case 'demo':
        return await demo(rest, io);
      case 'keys':
        return await keys(rest, io);
      case 'check':
        return await checkCommand(rest, {
          stdout: io.stdout,
          stderr: io.stderr,
          cwd: io.cwd,
          help: checkHelp,
        });
      default:
        throw new UsageError(`unknown command "${command}"; commands are proxy, demo, keys, check`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`oncely: ${error.message}\n`);
      io.stderr(`Run 'oncely ${error.command ? `${error.command} ` : ''}--help' for usage.\n`);
      return 2;
    }
    io.stderr(`oncely: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

/** A log line of the CLI: the gateway's entries, and the CLI's own (start-up settings). */
type LogLine = GatewayLogEntry | ({ level: GatewayLogEntry['level']; msg: string } & Record<string, unknown>);

/** A JSON log line on stdout: one object per line, with the time first. */
function logger(io: CliIo): (entry: LogLine) => void {
  return (entry) => io.stdout(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
}

function printable(config: ProxyConfig): Record<string, unknown> {
  return {
    upstream: config.upstream,
    host: config.host,
    port: config.port,
    store: describeStore(config.store),
    ttl: formatDuration(config.ttlMs),
    lease: formatDuration(config.leaseMs),
    'scope-header': config.scopeHeader ?? null,
    'allow-unscoped': config.allowUnscoped,
    'require-key': config.requireKey,
    methods: config.methods.join(','),
    concurrency: config.concurrency,
    'max-wait': formatDuration(config.maxWaitMs),
    cache: config.cache,
    'max-body': formatSize(config.maxBodyBytes),
    'max-response': formatSize(config.maxResponseBytes),
    'upstream-timeout': formatDuration(config.upstreamTimeoutMs),
    'upstream-idle-timeout': formatDuration(config.upstreamIdleTimeoutMs),
    'store-wait': formatDuration(config.storeWaitMs),
    'admin-prefix': config.adminPrefix,
  };
}

async function proxy(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = loadProxyConfig(args, io.env, { 'print-config': { type: 'boolean' } }, io.cwd);
  if (parsed.help) {
    io.stdout(proxyHelp());
    return 0;
  }
  const { config, flags } = parsed;
  if (flags['print-config']) {
    io.stdout(`${JSON.stringify(printable(config), null, 2)}\n`);
    return 0;
  }
  const log = logger(io);
  const opened = await openStore(config.store, {
    onError: (error) => log({ level: 'warn', msg: 'store_connection', error: error.message }),
    // Waiters hear of completions in other gateways at once (Redis pub/sub).
    subscribe: config.concurrency === 'wait',
  }).catch((error: unknown) => {
    throw new Error(`cannot open the store ${describeStore(config.store)}: ${(error as Error).message}`, {
      cause: error,
    });
  });
  // Serve only once the store answers: a gateway that listened on an unreachable store would
  // answer every recorded request 503 while health checks and deploys took it for up.
  const unavailable = await storeUnavailable(opened.store, config.storeWaitMs);
  if (unavailable !== undefined) {
    log({
      level: 'error',
      msg: 'store_unavailable',
      error: `the store ${describeStore(config.store)} did not answer within ${formatDuration(config.storeWaitMs)}: ${unavailable}`,
    });
    await opened.close().catch(() => {});
    return 1;
  }
  let gateway: ReturnType<typeof createGateway>;
  try {
    gateway = createGateway({
      upstream: config.upstream,
      store: opened.store,
      ttlMs: config.ttlMs,
      leaseMs: config.leaseMs,
      concurrency: config.concurrency,
      maxWaitMs: config.maxWaitMs,
      cache: config.cache,
      maxResponseBytes: config.maxResponseBytes,
      methods: config.methods,
      required: config.requireKey,
      scopeHeader: config.scopeHeader,
      requireScope: config.scopeHeader !== undefined && !config.allowUnscoped,
      maxBodyBytes: config.maxBodyBytes,
      upstreamTimeoutMs: config.upstreamTimeoutMs,
      upstreamIdleTimeoutMs: config.upstreamIdleTimeoutMs,
      adminPrefix: config.adminPrefix,
      log,
    });
  } catch (error) {
    await opened.close();
    if (isOncelyError(error) && error.code === 'ERR_ONCELY_INVALID_OPTION')
      throw new UsageError(error.message, 'proxy');
    throw error;
  }

  let url: string;
  try {
    url = await gateway.listen({ port: config.port, host: config.host });
  } catch (error) {
    await gateway.close();
    await opened.close();
    throw new Error(`cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  log({ level: 'info', msg: 'started', ...printable(config) });
  if (config.store.kind === 'memory') {
    log({
      level: 'warn',
      msg: 'the memory store keeps records in this process only: they are lost on restart and not shared with other gateways',
    });
  }
  if (config.scopeHeader === undefined) {
    log({
      level: 'warn',
      msg: "no --scope-header: every client shares one key space, so one client can replay the response to another client's key",
    });
  }
  io.stdout(`listening on ${url}\n`);
  return waitForShutdown(io, log, async () => {
    await gateway.close();
    await opened.close();
  });
}

/** Resolve with 0 after the first SIGTERM or SIGINT once `stop` finished; a second signal exits at once with 1. */
function waitForShutdown(
  io: CliIo,
  log: (entry: LogLine) => void,
  stop: () => Promise<void>,
): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        io.stderr(`oncely: ${signal} again, exiting without waiting\n`);
        resolve(1);
        return;
      }
      stopping = true;
      log({ level: 'info', msg: `${signal}: finishing requests in flight, then exiting` });
      stop().then(
        () => {
          log({ level: 'info', msg: 'stopped' });
          resolve(0);
        },
        (error: unknown) => {
          io.stderr(`oncely: shutdown failed: ${(error as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

async function demo(args: readonly string[], io: CliIo): Promise<number> {
  const { parseArgs } = await import('node:util');
  let values: { port?: string; host?: string; dir?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        dir: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message, 'demo');
  }
  if (values.help) {
    io.stdout(demoHelp());
    return 0;
  }
  const port = Number(values.port ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError(`--port: "${values.port}" is not a port (0 to 65535)`, 'demo');
  }
  await startDemo({ port, host: values.host ?? '127.0.0.1', dir: values.dir ?? io.cwd, env: process.env });
  // The example serves until SIGINT or SIGTERM, and exits the process itself after closing.
  return new Promise<number>(() => {});
}

async function keys(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = loadStoreConfig(
    'keys',
    args,
    io.env,
    {
      scope: { type: 'string' },
      body: { type: 'boolean' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      expired: { type: 'boolean' },
    },
    io.cwd,
  );
  if (parsed.help) {
    io.stdout(keysHelp());
    return 0;
  }
  const { config, positionals, flags } = parsed;
  const [subcommand, ...operands] = positionals;
  const check = (allowed: readonly string[]): void => {
    for (const name of ['scope', 'body', 'limit', 'json', 'expired']) {
      if (flags[name] !== undefined && !allowed.includes(name)) {
        throw new UsageError(`--${name} does not apply to keys ${subcommand}`, 'keys');
      }
    }
  };
  let run: (opened: OpenedStore) => Promise<number>;
  switch (subcommand) {
    case 'list': {
      check(['limit', 'json']);
      if (operands.length > 0) throw new UsageError(`unexpected argument "${operands[0]}"`, 'keys');
      const limit = flags.limit === undefined ? 100 : Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new UsageError(`--limit: "${flags.limit}" is not a count >= 1`, 'keys');
      run = async (opened) => {
        io.stdout(await listKeys(opened, { now: Date.now(), limit, json: flags.json === true }));
        return 0;
      };
      break;
    }
    case 'show': {
      check(['scope', 'body']);
      const [key, extra] = operands;
      if (key === undefined)
        throw new UsageError('keys show needs a key: oncely keys show <key> [--scope <value>]', 'keys');
      if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`, 'keys');
      run = async (opened) => {
        let result: Awaited<ReturnType<typeof showKey>>;
        try {
          result = await showKey(opened, {
            key,
            scope: flags.scope as string | undefined,
            now: Date.now(),
            body: flags.body === true,
          });
        } catch (error) {
          if (error instanceof RangeError) throw new UsageError(error.message, 'keys');
          throw error;
        }
        (result.found ? io.stdout : io.stderr)(result.text);
        return result.found ? 0 : 1;
      };
      break;
    }
    case 'purge': {
      check(['expired']);
      if (flags.expired !== true) {
        throw new UsageError(
          'keys purge needs --expired: only records whose retention ended are purged (deleting a live record would let its retry run again)',
          'keys',
        );
      }
      if (operands.length > 0) throw new UsageError(`unexpected argument "${operands[0]}"`, 'keys');
      run = async (opened) => {
        io.stdout(await purgeExpiredKeys(opened, { now: Date.now() }));
        return 0;
      };
      break;
    }
    case undefined:
      throw new UsageError('keys needs a subcommand: list, show <key> or purge --expired', 'keys');
    default:
      throw new UsageError(`unknown subcommand "keys ${subcommand}"; use list, show or purge`, 'keys');
  }

  if (config.store.kind === 'memory') {
    throw new NotSupportedError(
      `keys ${subcommand} is not supported for the memory store: its records live inside one gateway process, not in a store another process can read`,
    );
  }
  // Opening a missing SQLite file would create an empty database: say it is missing instead.
  if (config.store.kind === 'sqlite' && !existsSync(config.store.path)) {
    throw new Error(`no SQLite store at ${config.store.path} (use --store sqlite:<path> or ONCELY_STORE)`);
  }
  const opened = await openStore(config.store, { migrate: false }).catch((error: unknown) => {
    throw new Error(`cannot open the store ${describeStore(config.store)}: ${(error as Error).message}`, {
      cause: error,
    });
  });
  try {
    return await run(opened);
  } catch (error) {
    if (error instanceof NotSupportedError) throw new Error(`keys ${subcommand}: ${error.message}`);
    throw error;
  } finally {
    await opened.close();
  }
}

/**
 * Probe the store (healthz's probe, each attempt within 2 s) until it answers or `waitMs` passed;
 * the reason of the last failure, or `undefined` once it answered. A store that answers but cannot
 * write yet (a SQLite lock) is up: healthz says degraded.
 */
async function storeUnavailable(store: Store, waitMs: number): Promise<string | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const timeoutMs = Math.max(1, Math.min(2000, deadline - Date.now()));
    const check = await probeStore(store, { timeoutMs, now: Date.now });
    if (check.status !== 'unavailable') return undefined;
    if (Date.now() + 250 >= deadline) return check.error;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
