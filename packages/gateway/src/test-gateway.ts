/**
 * Test helpers: a gateway in this process in front of the test upstream (what the HTTP behaviour
 * suite's `start` builds), and the gateway as a separate process started through the CLI.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { HttpTestSetup, RunningServer } from '@oncely/conformance';
import { createGateway, type Gateway, type GatewayLogEntry, type GatewayOptions } from './gateway.ts';
import { startTestUpstream, type TestUpstream } from './test-upstream.ts';

/** The CLI entry as the tests run it: the package's bin, which runs the sources under this condition. */
export const BIN = join(import.meta.dirname, '..', 'bin', 'oncely.js');
export const NODE_ARGS = ['--conditions=oncely:source'];

/**
 * The suite's server: the test upstream, and a gateway in front of it with the suite's options, the
 * scope from `x-tenant`, and `/required` alone requiring a key.
 */
export async function startSuiteGateway({ options, app }: HttpTestSetup): Promise<RunningServer> {
  const upstream = await startTestUpstream({ app });
  const gateway = createGateway({
    ...options,
    upstream: upstream.url,
    scopeHeader: 'x-tenant',
    // The suite sends most requests without a tenant, into the shared key space; its requireScope
    // test turns this on.
    requireScope: options.requireScope ?? false,
    required: ({ path }) => path === '/required',
  });
  const url = await gateway.listen({ port: 0 });
  return {
    url,
    close: async () => {
      await gateway.close();
      await upstream.close();
    },
  };
}

export interface InProcessGateway {
  gateway: Gateway;
  upstream: TestUpstream;
  url: string;
  logs: GatewayLogEntry[];
  close(): Promise<void>;
}

/** A gateway in this process in front of a fresh test upstream; logs are collected. */
export async function startGateway(
  options: Omit<GatewayOptions, 'upstream' | 'log'> & { upstream?: string },
): Promise<InProcessGateway> {
  const upstream = await startTestUpstream();
  const logs: GatewayLogEntry[] = [];
  const gateway = createGateway({
    ...options,
    upstream: options.upstream ?? upstream.url,
    log: (entry) => logs.push(entry),
  });
  const url = await gateway.listen({ port: 0 });
  return {
    gateway,
    upstream,
    url,
    logs,
    close: async () => {
      await gateway.close();
      await upstream.close();
    },
  };
}

export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  /** Everything printed to stdout so far. */
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or signal name) once the process ended. */
  exited: Promise<number | string>;
  /** Send `signal` (default SIGTERM) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/** Run `oncely <args>` as a process and wait for its `listening on` line (or `ready`, whose group 1 is the URL). */
export function startGatewayProcess(
  args: readonly string[],
  env: Record<string, string> = {},
  {
    timeoutMs = 20_000,
    ready = /^listening on (http:\/\/\S+)$/m,
  }: { timeoutMs?: number; ready?: RegExp } = {},
): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [...NODE_ARGS, BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `oncely ${args.join(' ')} did not print "listening on" within ${timeoutMs} ms:\n${out}\n${err}`,
        ),
      );
    }, timeoutMs);
    const onData = (): void => {
      const match = ready.exec(out);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({
        child,
        url: match[1]!,
        stdout: () => out,
        stderr: () => err,
        exited,
        stop: (signal = 'SIGTERM') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      });
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`oncely ${args.join(' ')} exited (${code}) before listening:\n${out}\n${err}`));
    });
  });
}

/** Run `oncely <args>` to completion. */
export function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
  options: { node?: readonly string[]; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [...(options.node ?? NODE_ARGS), BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`oncely ${args.join(' ')} did not exit within ${options.timeoutMs ?? 20_000} ms`));
    }, options.timeoutMs ?? 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
