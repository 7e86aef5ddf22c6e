/**
 * The peer libraries on the same Express route and the same Redis, each used through its real API
 * (read from its code in node_modules), with the least glue its README asks for.
 */
import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  IdempotencyValidationError,
  makeIdempotent,
} from '@aws-lambda-powertools/idempotency';
import { CachePersistenceLayer } from '@aws-lambda-powertools/idempotency/cache';
import nodeIdempotency from '@node-idempotency/core';
import nodeIdempotencyRedis from '@node-idempotency/storage-adapter-redis';
import { createClient } from '@redis/client';
import type { RequestHandler } from 'express';
import expressIdempotency from 'express-idempotency';
import expressIdempotencyRedis from 'express-idempotency-redis-adapter';
import { createPayment, type PaymentInput, workMsOf } from './handler.ts';
import type { ServerSpec } from './spec.ts';

export interface PeerRoute {
  handlers: RequestHandler[];
  close(): Promise<void>;
}

export async function peerRoute(spec: ServerSpec): Promise<PeerRoute> {
  switch (spec.variant) {
    case 'express-idempotency':
      return expressIdempotencyRoute(spec);
    case 'node-idempotency':
      return nodeIdempotencyRoute(spec);
    case 'powertools':
      return powertoolsRoute(spec);
    default:
      throw new Error(`not a peer: ${spec.variant}`);
  }
}

/** Its data adapter keys Redis by the raw Idempotency-Key (no prefix option): the harness's keys carry the tag. */
async function expressIdempotencyRoute(spec: ServerSpec): Promise<PeerRoute> {
  // CommonJS `exports.default`: reached through the namespace object.
  const RedisAdapter = (
    expressIdempotencyRedis as unknown as { default: new (o: unknown) => RedisAdapterLike }
  ).default;
  const dataAdapter = new RedisAdapter({ connectionConfig: { url: spec.redisUrl } });
  await dataAdapter.connect();
  const middleware = expressIdempotency.idempotency({ dataAdapter } as never) as unknown as RequestHandler;
  const handler: RequestHandler = async (req, res) => {
    // Its README: the middleware calls next() on a replay too, so the route must ask isHit() itself.
    if (expressIdempotency.getSharedIdempotencyService().isHit(req)) return;
    res.status(201).json(await createPayment(inputOf(req)));
  };
  return { handlers: [middleware, handler], close: () => dataAdapter.disconnect() };
}

interface RedisAdapterLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

/** @node-idempotency/core has no Express adapter installed here: onRequest before, onResponse after, as its README shows. */
async function nodeIdempotencyRoute(spec: ServerSpec): Promise<PeerRoute> {
  const { Idempotency, IdempotencyError, IdempotencyErrorCodes } = nodeIdempotency;
  const storage = new nodeIdempotencyRedis.RedisStorageAdapter({ url: spec.redisUrl });
  await storage.connect();
  const idempotency = new Idempotency(storage, { cacheKeyPrefix: `bench:${spec.tag}` });
  const handler: RequestHandler = async (req, res) => {
    const request = { method: req.method, headers: req.headers, body: req.body, path: req.path };
    try {
      const cached = await idempotency.onRequest(request as never);
      if (cached) {
        res.status((cached.additional as { status: number }).status).json(cached.body);
        return;
      }
    } catch (error) {
      if (error instanceof IdempotencyError) {
        const status =
          error.code === IdempotencyErrorCodes.REQUEST_IN_PROGRESS
            ? 409
            : error.code === IdempotencyErrorCodes.IDEMPOTENCY_FINGERPRINT_MISSMATCH
              ? 422
              : 400;
        res.status(status).json({ error: error.code });
        return;
      }
      throw error;
    }
    const payment = await createPayment(inputOf(req));
    // Awaited before the response goes out, so an immediate retry finds it (as Oncely does).
    await idempotency.onResponse(request as never, { body: payment, additional: { status: 201 } });
    res.status(201).json(payment);
  };
  return { handlers: [handler], close: () => storage.disconnect() };
}

/**
 * Powertools makes a function idempotent, not an HTTP route: the key comes out of the payload by
 * JMESPath, the result must be JSON, and status and headers are the glue's to rebuild.
 */
async function powertoolsRoute(spec: ServerSpec): Promise<PeerRoute> {
  const client = await createClient({ url: spec.redisUrl }).connect();
  const persistenceStore = new CachePersistenceLayer({ client: client as never });
  // No payloadValidationJmesPath: with it, every replay from the cache layer is a 422 (its
  // _updateRecord drops the stored payload hash on completion; see docs/benchmarks.md).
  // No registerLambdaContext: outside Lambda there is no context, so in-progress records get no
  // expiry and a concurrent duplicate treats them as orphans (measured in the correctness table).
  const config = new IdempotencyConfig({ eventKeyJmesPath: 'key', throwOnNoIdempotencyKey: true });
  const charge = makeIdempotent((input: PaymentInput) => createPayment(input), {
    persistenceStore,
    config,
    keyPrefix: `bench:${spec.tag}`,
  });
  const handler: RequestHandler = async (req, res) => {
    try {
      res.status(201).json(await charge(inputOf(req)));
    } catch (error) {
      if (error instanceof IdempotencyAlreadyInProgressError) {
        res.status(409).json({ error: error.name });
      } else if (error instanceof IdempotencyValidationError) {
        res.status(422).json({ error: error.name });
      } else {
        throw error;
      }
    }
  };
  return { handlers: [handler], close: () => client.close() };
}

function inputOf(req: Parameters<RequestHandler>[0]): PaymentInput {
  return { key: req.get('idempotency-key'), body: req.body, workMs: workMsOf(req.headers['x-work-ms']) };
}
