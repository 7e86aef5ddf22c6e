// Test helper: a real node:http server on 127.0.0.1 that the client tests drive. POST and PATCH go
// through `@oncely/core`'s HTTP layer on a memory store (test-only: the client itself never imports
// core), so replays, 409 in-progress and 422 mismatches are the real thing. Each path can be given a
// script of faults, consumed one per arriving request.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpIdempotency, memoryStore } from '@oncely/core';

export type Step =
  /** Answer this without running anything. */
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: string }
  /** Destroy the connection before running anything. */
  | { kind: 'drop' }
  /** Run (and record) the operation, then destroy the connection instead of answering. */
  | { kind: 'execute-then-drop' }
  /** Run the operation slowly: `ms` pass between starting it and recording its response. */
  | { kind: 'slow'; ms: number }
  /** Never answer, never run. */
  | { kind: 'hang' };

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Every Idempotency-Key header line, as sent. */
  keyLines: string[];
  body: Buffer;
}

export interface TestServer {
  url: string;
  /** Every request that arrived, in order. */
  requests: SeenRequest[];
  /** How many times an operation ran (the side effect the client must not repeat). */
  readonly executions: number;
  /** Faults for the next requests to `path`; after them, requests are served normally. */
  script(path: string, steps: Step[]): void;
  /** Resolves once no operation is running. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestServer(): Promise<TestServer> {
  const store = memoryStore({ sweepIntervalMs: 0 });
  const idempotency = httpIdempotency({ store, retryAfterSeconds: 1 });
  const scripts = new Map<string, Step[]>();
  const requests: SeenRequest[] = [];
  const running = new Set<Promise<unknown>>();
  let executions = 0;

  const send = (
    res: ServerResponse,
    status: number,
    headers: Iterable<[string, string]>,
    body: Uint8Array,
  ) => {
    if (res.destroyed) return;
    res.writeHead(status, [...headers].flat());
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const step = scripts.get(url.pathname)?.shift();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const keyLines = req.headersDistinct['idempotency-key'] ?? [];
    requests.push({ method: req.method ?? '', path: url.pathname, headers: req.headers, keyLines, body });

    if (step?.kind === 'drop') return void req.socket.destroy();
    if (step?.kind === 'hang') return;
    if (step?.kind === 'respond') {
      const headers = Object.entries(step.headers ?? {});
      return send(res, step.status, headers, Buffer.from(step.body ?? ''));
    }

    const decision = await idempotency.handle({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.search,
      keyHeader: keyLines.length === 0 ? undefined : keyLines,
      contentType: req.headers['content-type'] ?? null,
      body: new Uint8Array(body),
    });
    if (decision.kind === 'respond') {
      const { status, headers, body: stored } = decision.response;
      return send(res, status, headers, stored);
    }
    const work = (async () => {
      executions++;
      if (step?.kind === 'slow') await sleep(step.ms);
      const payload = JSON.stringify({ execution: executions, method: req.method, path: url.pathname });
      const response = {
        status: req.method === 'GET' ? 200 : 201,
        headers: [['content-type', 'application/json']] as Array<[string, string]>,
        body: new TextEncoder().encode(payload),
      };
      if (decision.kind === 'execute') await decision.commit(response);
      return response;
    })();
    running.add(work);
    const response = await work.finally(() => running.delete(work));
    if (step?.kind === 'execute-then-drop') return void req.socket.destroy();
    send(res, response.status, response.headers, response.body);
  };
  // A client that aborts while its body is being read ends that exchange, not the server.
  const server = createServer((req, res) => void handle(req, res).catch(() => req.socket.destroy()));

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get executions() {
      return executions;
    },
    script: (path, steps) => void scripts.set(path, [...steps]),
    settled: async () => {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await idempotency.oncely.drain();
      await store.close();
    },
  };
}
