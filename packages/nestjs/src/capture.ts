/**
 * The response side, at the lowest level both platforms share: Node's `ServerResponse` (Express's
 * `res`, Fastify's `reply.raw`). Whatever the handler returns — an object, a `StreamableFile`, a
 * stream, a response it writes itself through `@Res()` — Nest's platform ends up in `writeHead`,
 * `write` and `end`, so the bytes core's `captureResponse` records there are the bytes the client
 * gets. What is Nest's own: replacing the reply its platform sends with a decided one.
 */

import type { ServerResponse } from 'node:http';
import type { HeaderPairs, HttpResponse } from '@oncely/core';
import { writeResponse } from '@oncely/core/node';

type Callback = (error?: Error | null) => void;
type WriteHead = ServerResponse['writeHead'];

/**
 * Send a response Oncely decided (a replay, a problem) in place of the one Nest sends. Nest's
 * router replies after the interceptors, whatever they return; sending first would make it fail
 * on a response already sent. So the platform's reply goes ahead and, at the raw response, its head
 * and body are dropped and this one is written instead, in one write. `now` is for a handler that
 * takes `@Res()`: Nest sends nothing for it, so the response is written at once.
 *
 * Headers set on the response before the decision (by a middleware, `@Header()`, CORS) stay,
 * unless the decided response names them; those the platform added for its own reply do not.
 */
export function sendDecided(
  res: ServerResponse,
  response: HttpResponse,
  options: { before: HeaderPairs; now: boolean },
): void {
  const decided = new Set(response.headers.map(([name]) => name.toLowerCase()));
  const kept = options.before.filter(([name]) => {
    const lower = name.toLowerCase();
    return !decided.has(lower) && lower !== 'content-length' && lower !== 'transfer-encoding';
  });
  const whole: HttpResponse = { ...response, headers: [...kept, ...response.headers] };
  const send = (): void => {
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    writeResponse(res, whole);
  };
  if (options.now) {
    send();
    return;
  }

  const { writeHead, write, end } = res;
  const restore = (): void => {
    res.writeHead = writeHead;
    res.write = write;
    res.end = end;
  };
  res.writeHead = function (this: ServerResponse) {
    return this;
  } as WriteHead;
  res.write = ((_chunk: unknown, encoding?: unknown, cb?: unknown) => {
    const callback = [encoding, cb].find((arg) => typeof arg === 'function') as Callback | undefined;
    if (callback) process.nextTick(callback);
    return true;
  }) as ServerResponse['write'];
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    restore();
    send();
    const callback = args.find((arg) => typeof arg === 'function') as Callback | undefined;
    if (callback) process.nextTick(callback);
    return this;
  } as ServerResponse['end'];
}
