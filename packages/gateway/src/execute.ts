/**
 * A recorded request's one trip upstream: the buffered body sent once, the response recorded by
 * core's recorder and committed before the client has all of it. What the client is told when the
 * trip fails is the gateway's to say (`gateway.ts`); this only reports how it ended.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpDecision } from '@oncely/core';
import { onClientGone, rawHeaderPairs, responseRecorder, writeResponse } from '@oncely/core/node';
import { clientResponseHeaders, RELEASE_HEADER, upstreamRequestHeaders } from './forward-headers.ts';
import type { CommitResult, GatewayMetrics } from './metrics.ts';
import { write, writeStreamHead } from './send-response.ts';
import { exchange, type UpstreamError, type UpstreamTarget } from './upstream.ts';

type Execute = Extract<HttpDecision, { kind: 'execute' }>;

/** How the trip ended: a response relayed and its key settled, an upstream failure (key released), or a lost lease. */
export type ExecuteResult =
  | { kind: 'relayed'; status: number; commit: CommitResult }
  | { kind: 'failed'; failure: UpstreamError }
  | { kind: 'lease_lost' };

export interface ExecuteInit {
  decision: Execute;
  /** The request body, read whole for the fingerprint. */
  body: Uint8Array;
  /** Path and query as the client sent them. */
  path: string;
  target: UpstreamTarget;
  upstreamTimeoutMs: number;
  /** The engine's `maxResponseBytes`: a longer response is streamed on and kept without its body. */
  maxResponseBytes: number;
  metrics: GatewayMetrics;
}

/**
 * Run a recorded request upstream and settle its key. The response is buffered up to
 * `maxResponseBytes` and kept before the client gets any of it. A larger one is streamed to the
 * client as it comes (the engine keeps the outcome without its body), with its last chunk held until
 * the store has the outcome, so a retry after the response ended never runs it again.
 */
export async function execute(
  req: IncomingMessage,
  res: ServerResponse,
  init: ExecuteInit,
): Promise<ExecuteResult> {
  const { decision, body, path, target, metrics } = init;
  metrics.leasesInFlight++;
  let cut: (() => void) | undefined;
  try {
    // Not cancelled when the client goes away: the upstream's work goes on (most servers do not stop
    // a handler whose client left) and its outcome is kept for the retry. Cancelled when the lease
    // is lost (below): another request owns the key and runs the call again.
    // Sent once, never again on our own, not even when a kept-alive connection turns out dead
    // before any response: the upstream may have acted on it before the connection went (RFC 9110
    // §9.2.2). The failure releases the key and the client retries with it; the upstream got the
    // Idempotency-Key with this attempt, so an upstream that dedupes answers the retry from it.
    const upstream = exchange(target, {
      method: req.method ?? 'POST',
      path,
      headers: upstreamRequestHeaders(req, { upstreamHost: target.host, contentLength: body.byteLength }),
      timeoutMs: init.upstreamTimeoutMs,
    });
    upstream.request.end(body);
    // Core's one disconnect policy: the call goes on, its outcome is kept for the client's retry.
    onClientGone(res, decision);
    // A lost lease means a retry took the key over and is running the upstream call again. Cut this
    // call: closing the connection is the HTTP form of aborting the handler's signal, and an
    // upstream that watches for its client leaving can stop. The client hears that the lease was
    // lost; its retry finds the new owner's outcome.
    cut = (): void => void upstream.request.destroy(new Error('the lease on the key was lost'));
    decision.signal.addEventListener('abort', cut, { once: true });
    const failed = async (error: unknown): Promise<ExecuteResult> => {
      if (decision.signal.aborted) return { kind: 'lease_lost' };
      const failure = upstream.failure(error);
      await decision.abort(failure);
      return { kind: 'failed', failure };
    };
    let response: IncomingMessage;
    try {
      response = await upstream.response;
    } catch (error) {
      return await failed(error);
    }

    const status = response.statusCode ?? 502;
    const pairs = rawHeaderPairs(response.rawHeaders);
    const release = response.headers[RELEASE_HEADER] !== undefined;
    const recorder = responseRecorder(decision, {
      maxResponseBytes: init.maxResponseBytes,
      method: req.method,
    });
    let streaming = false;
    let held: Buffer | undefined;
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        if (recorder.add(chunk)) continue;
        if (!streaming) {
          streaming = true;
          writeStreamHead(res, status, response.statusMessage, pairs);
          for (const kept of recorder.takeChunks()) await write(res, kept);
        }
        if (held) await write(res, held);
        held = chunk;
      }
    } catch (error) {
      // Streaming, the head is out: the client gets the same broken response (see upstreamFailed).
      return await failed(error);
    }

    let commit: CommitResult;
    if (release) {
      await decision.abort(new Error(`the upstream sent ${RELEASE_HEADER}`));
      commit = 'released';
    } else {
      commit = await recorder.commit({ status, headers: pairs });
    }
    metrics.commit(commit);
    if (streaming) {
      if (!res.destroyed) res.end(held);
    } else {
      writeResponse(
        res,
        { status, headers: clientResponseHeaders(pairs, false), body: recorder.body()! },
        { statusMessage: response.statusMessage },
      );
    }
    return { kind: 'relayed', status, commit };
  } finally {
    if (cut) decision.signal.removeEventListener('abort', cut);
    metrics.leasesInFlight--;
  }
}
