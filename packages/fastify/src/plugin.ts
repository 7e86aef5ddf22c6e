/**
 * The Fastify 5 adapter: maps a Fastify request into `httpIdempotency().handle`, and the reply out.
 * The decisions (status, key parsing, fingerprints, replay headers) are all made in `@oncely/core`.
 *
 * Lifecycle: `preParsing` tees the body bytes, `preHandler` decides (the body is complete by then),
 * `onError` marks a thrown error, `onSend` captures the response and commits (or aborts) it before a
 * byte goes out, and the raw response's `close` releases a key whose reply bypassed `onSend` (hijack).
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import {
  bodyAllowed,
  HTTP_ROUTE_KEYS,
  type HttpDecision,
  type HttpIdempotencyOptions,
  type HttpResponse,
  type HttpRouteOptions,
  headerObject,
  headerPairs,
  httpIdempotency,
  OncelyError,
  routeOptionsProblem,
  splitTarget,
} from '@oncely/core';
import { clientSignal } from '@oncely/core/node';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

/** Options of the plugin: every engine and HTTP option of `@oncely/core`, plus `scope`. */
export interface FastifyIdempotencyOptions extends HttpIdempotencyOptions {
  /**
   * The tenant of a request (API key id, account id): keys of one tenant never replay another's.
   * Called in `preHandler`, so what your `onRequest`/`preValidation` hooks set on the request is there.
   * @default none: all clients share one key space
   */
  scope?: (request: FastifyRequest) => string | undefined;
}

/** Route-level settings: `config: { idempotency: { required: true } }`, or `false` to turn it off. */
export interface FastifyIdempotencyRouteConfig {
  /** Refuse a request without a key with 400, overriding the plugin's `required`. */
  required?: boolean;
  /** This route's execution bound, overriding the plugin's `maxExecutionMs` (0: unbounded). */
  maxExecutionMs?: number;
}

/** What a handler of a recorded request finds on `request.idempotency`. */
export interface FastifyIdempotencyContext {
  /** Aborts with `ERR_ONCELY_LEASE_LOST` if the key's lease can no longer be renewed: stop the work. */
  readonly signal: AbortSignal;
  /** The parsed key (`"abc"` and `abc` are one key): derive keys for downstream calls from this. */
  readonly key: string;
  /** sha256 of scope and key: safe to log. */
  readonly keyHash: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false` turns idempotency off for the route; `{ required: true }` makes the key mandatory. */
    idempotency?: FastifyIdempotencyRouteConfig | false;
  }
  interface FastifyRequest {
    /** Set when this request is recorded (it carried a key and runs its handler); `null` otherwise. */
    idempotency: FastifyIdempotencyContext | null;
  }
}

type Execute = Extract<HttpDecision, { kind: 'execute' }>;

interface BodyCapture {
  /** Null once the request is fingerprinted: a body read later by the handler is not kept. */
  chunks: Buffer[] | null;
  /** The whole body went through the tee (false when a parser left the stream to the handler). */
  complete: boolean;
}

interface Execution {
  decision: Execute;
  settled: boolean;
  /** Set by `onError`: the handler (or a later hook) threw, so the key is released, not committed. */
  failed: { reason: unknown } | undefined;
}

interface RequestState {
  body?: BodyCapture;
  execution?: Execution;
  /** A replay whose stored headers have no Content-Type: drop the one `reply.send(Buffer)` adds. */
  untypedReplay?: boolean;
}

const KEY_HEADER = 'idempotency-key';
const EMPTY = Buffer.alloc(0);

const plugin: FastifyPluginAsync<FastifyIdempotencyOptions> = async (fastify, options) => {
  const { scope, ...httpOptions } = options;
  if (scope !== undefined && typeof scope !== 'function') {
    throw new OncelyError('ERR_ONCELY_INVALID_OPTION', 'scope must be a function of the request');
  }
  const http = httpIdempotency(httpOptions);
  const states = new WeakMap<FastifyRequest, RequestState>();

  /** The route options for a request this plugin may record, or undefined when it never records it. */
  const routeOf = (request: FastifyRequest): HttpRouteOptions | undefined => {
    if (request.is404 || !http.covers(request.method)) return undefined;
    const config = request.routeOptions.config.idempotency;
    return config === false ? undefined : (config ?? {});
  };

  fastify.decorateRequest('idempotency', null);

  fastify.addHook('onRoute', (route) => {
    const config = route.config?.idempotency;
    if (config === undefined || config === false) return;
    const valid =
      typeof config === 'object' &&
      config !== null &&
      Object.keys(config).every((name) => (HTTP_ROUTE_KEYS as readonly string[]).includes(name)) &&
      routeOptionsProblem(config) === undefined;
    if (!valid) {
      throw new OncelyError(
        'ERR_ONCELY_INVALID_OPTION',
        `route ${String(route.method)} ${route.url}: config.idempotency must be false or { required?: boolean, maxExecutionMs?: integer >= 0 }`,
      );
    }
  });

  fastify.addHook('preParsing', async (request, _reply, payload) => {
    // Only a request with a key is ever fingerprinted; the others keep their stream untouched.
    if (routeOf(request) === undefined || request.headers[KEY_HEADER] === undefined) return payload;
    const body: BodyCapture = { chunks: [], complete: false };
    states.set(request, { body });
    return tee(payload, body);
  });

  fastify.addHook('preHandler', async (request, reply) => {
    const route = routeOf(request);
    if (route === undefined) return;
    const state = states.get(request) ?? {};
    const captured = state.body;
    // Fastify routed the request, so its target is a path (or an absolute URL): never null here.
    const target = splitTarget(request.url) ?? { path: request.url, query: '' };
    const decision = await http.handle(
      {
        method: request.method,
        path: target.path,
        query: target.query,
        // Kept apart line by line, so two Idempotency-Key lines are refused rather than joined with ", ".
        keyHeader:
          (request.raw as Partial<IncomingMessage>).headersDistinct?.[KEY_HEADER] ??
          request.headers[KEY_HEADER],
        contentType: request.headers['content-type'] ?? null,
        scope: scope?.(request) ?? null,
        signal: clientSignal(reply.raw),
        // A body the parser did not read (a stream left to the handler) is not fingerprinted.
        body: () => (captured?.complete && captured.chunks ? Buffer.concat(captured.chunks) : null),
      },
      route,
    );
    if (captured) captured.chunks = null;
    if (decision.kind === 'pass') return;
    if (decision.kind === 'respond') {
      const hasType = decision.response.headers.some(([name]) => name === 'content-type');
      if (!hasType && decision.response.body.byteLength > 0) {
        states.set(request, { ...state, untypedReplay: true });
      }
      return send(reply, decision.response, request.method);
    }
    const execution: Execution = { decision, settled: false, failed: undefined };
    states.set(request, { ...state, execution });
    request.idempotency = { signal: decision.signal, key: decision.key, keyHash: decision.keyHash };
    // A reply that never passes onSend (hijacked, or written by Fastify's last-resort error handler)
    // cannot be captured: free the key once it is out. A client that merely went away is no reason
    // to free it: the handler still runs, and its response is committed for the client's retry.
    reply.raw.once('close', () => {
      if (reply.sent) void settle(request, execution, null, new Error('the reply bypassed onSend'));
      else if (!execution.settled) decision.clientGone();
    });
  });

  fastify.addHook('onError', async (request, _reply, error) => {
    const execution = states.get(request)?.execution;
    if (execution && !execution.settled) execution.failed = { reason: error };
  });

  fastify.addHook('onSend', async (request, reply, payload) => {
    const state = states.get(request);
    if (state?.untypedReplay) {
      reply.removeHeader('content-type');
      return payload;
    }
    const execution = state?.execution;
    if (execution === undefined || execution.settled) return payload;
    if (execution.failed) {
      await settle(request, execution, null, execution.failed.reason);
      return payload;
    }
    let read: { body: Uint8Array; payload: unknown };
    try {
      read = await readPayload(reply, payload);
    } catch (error) {
      await settle(request, execution, null, error);
      throw error;
    }
    // Awaited here, so the response is stored before the client can see it and retry. Where core's
    // rule says a response has no body (HEAD, 1xx, 204, 205, 304), none is stored.
    await settle(request, execution, {
      status: reply.statusCode,
      headers: headerPairs(reply.getHeaders()),
      body: bodyAllowed(request.method, reply.statusCode) ? read.body : EMPTY,
    });
    // Nor sent: Fastify drops the body of a HEAD (keeping its length), 1xx, 204 or 304 response
    // itself, but would send a 205's.
    return bodyAllowed(null, reply.statusCode) ? read.payload : null;
  });

  fastify.addHook('onClose', async () => {
    await http.oncely.drain();
  });
};

/**
 * The Fastify plugin. Register it once, before your routes; it is not encapsulated, so it covers
 * every route of the instance it is registered on, child plugins included.
 * @example
 * await app.register(idempotency, { store: sqliteStore({ database: './oncely.db' }) });
 * app.post('/payments', async (request) => charge(request.body, request.idempotency?.signal));
 */
export const idempotency: FastifyPluginAsync<FastifyIdempotencyOptions> = Object.assign(plugin, {
  // What fastify-plugin sets: no encapsulation, a name for dependency checks, the supported version.
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: '@oncely/fastify',
  [Symbol.for('plugin-meta')]: { name: '@oncely/fastify', fastify: '5.x' },
});

/**
 * See the body bytes as the parser reads them; the parser gets the same stream, untouched. The
 * stream's own `emit` is wrapped for as long as the body flows, so a chunk is kept as it is handed
 * to whoever listens: no second stream, no pipe, no listeners of our own on the request path.
 * (A Transform piped in between cost more than the rest of the plugin on a replay.)
 */
function tee(payload: Readable, capture: BodyCapture): Readable {
  const emit = payload.emit;
  // Put back by assignment, not `delete`: deleting a property turns the request object into a
  // slow dictionary-mode object for the rest of its life.
  const restore = (): void => {
    payload.emit = emit;
  };
  payload.emit = function (this: Readable, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'data') {
      const chunk = args[0];
      capture.chunks?.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    } else if (event === 'end') {
      capture.complete = true;
      restore();
    } else if (event === 'error' || event === 'close') {
      restore();
    }
    return emit.call(this, event, ...args);
  } as Readable['emit'];
  return payload;
}

/** The bytes of an onSend payload of any kind; streams are read whole and handed on as a Buffer. */
async function readPayload(
  reply: FastifyReply,
  payload: unknown,
): Promise<{ body: Uint8Array; payload: unknown }> {
  if (payload === null || payload === undefined) return { body: EMPTY, payload };
  if (typeof payload === 'string') return { body: Buffer.from(payload), payload };
  if (Buffer.isBuffer(payload)) return { body: payload, payload };
  let source: unknown = payload;
  // Tested by tag, as Fastify does: a Response from another copy of undici is no `instanceof Response`.
  if (isResponse(payload)) {
    // Fastify applies a Response's status and headers after onSend; the payload we return is its body.
    reply.code(payload.status);
    for (const [name, value] of payload.headers) reply.header(name, value);
    if (payload.body === null) return { body: EMPTY, payload: null };
    source = payload.body;
  }
  if (isAsyncIterable(source)) {
    const chunks: Buffer[] = [];
    for await (const chunk of source) {
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array));
    }
    const body = Buffer.concat(chunks);
    return { body, payload: body };
  }
  throw new TypeError(`@oncely/fastify cannot capture a reply payload of type ${typeof payload}`);
}

function isResponse(value: unknown): value is Response {
  return Object.prototype.toString.call(value) === '[object Response]';
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  );
}

/** Send a decided response as is: repeated header names become one array (several lines). */
function send(reply: FastifyReply, response: HttpResponse, method: string): FastifyReply {
  reply.code(response.status).headers(headerObject(response.headers));
  const { body } = response;
  // No payload at all for an empty body: an empty Buffer would gain `Content-Type: application/octet-stream`.
  return body.byteLength === 0 || !bodyAllowed(method, response.status)
    ? reply.send()
    : reply.send(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}

/** Commit the response, or abort: exactly once per recorded request, whichever path gets here first. */
async function settle(
  request: FastifyRequest,
  execution: Execution,
  response: HttpResponse | null,
  reason?: unknown,
): Promise<void> {
  if (execution.settled) return;
  execution.settled = true;
  try {
    if (response) await execution.decision.commit(response);
    else await execution.decision.abort(reason);
  } catch (error) {
    // The handler's response still goes out; the key stays in progress until its lease lapses.
    request.log.error({ err: error }, '@oncely/fastify: could not settle the idempotency key');
  }
}
