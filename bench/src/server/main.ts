/**
 * Child process entry: one server under test, so its RSS and CPU are its own. The spec arrives as
 * JSON in argv; the port, side-effect counts and memory readings go back over IPC.
 */
import type { Server } from 'node:http';
import { effects, setPadding } from './handler.ts';
import type { Reply, Request, ServerSpec } from './spec.ts';

const spec = JSON.parse(process.argv[2] ?? '{}') as ServerSpec;
if (spec.bodyBytes) setPadding(spec.bodyBytes);

function send(reply: Reply): void {
  process.send?.(reply);
}

let close: () => Promise<void>;
let port: number;
// One framework per process, imported on demand so start-up loads only what this case runs.
if (spec.framework === 'express') {
  const { startExpress } = await import('./express-app.ts');
  const started = await startExpress(spec);
  const address = started.server.address();
  port = typeof address === 'object' && address ? address.port : 0;
  close = async () => {
    await new Promise<void>((resolve) => (started.server as Server).close(() => resolve()));
    await started.close();
  };
} else if (spec.framework === 'fastify') {
  const { startFastify } = await import('./fastify-app.ts');
  ({ port, close } = await startFastify(spec));
} else if (spec.framework === 'nest-express' || spec.framework === 'nest-fastify') {
  const { startNest } = await import('./nest-app.ts');
  ({ port, close } = await startNest(spec));
} else {
  const { startHono } = await import('./hono-app.ts');
  ({ port, close } = await startHono(spec));
}

process.on('message', (message: Request) => {
  if (message.type === 'effects') {
    const perKey: Record<string, number> = {};
    for (const key of message.keys) perKey[key] = effects.perKey.get(key) ?? 0;
    send({ id: message.id, type: 'effects', executions: effects.executions, perKey });
  } else if (message.type === 'rss') {
    // A full collection first, so RSS shows what is retained, not garbage not yet collected.
    (globalThis as { gc?: () => void }).gc?.();
    const usage = process.memoryUsage();
    send({ id: message.id, type: 'rss', rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external });
  }
});

process.on('SIGTERM', () => {
  // Keep-alive sockets from the load generator would hold server.close() open: exit on a deadline.
  setTimeout(() => process.exit(0), 1000).unref();
  close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});

send({ type: 'ready', port });
