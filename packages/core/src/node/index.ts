/**
 * @oncely/core/node: the pieces of the HTTP edge that need Node's own `http` objects, written once
 * for every adapter built on `node:http` (Express, Fastify's raw request, the gateway). The root
 * export stays free of Node-only modules, so it also runs on Workers, Deno and Bun.
 */
export { clientSignal } from './client-signal.ts';
