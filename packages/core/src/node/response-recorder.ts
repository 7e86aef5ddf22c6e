/**
 * Recording the response of a recorded request as it is produced, chunk by chunk, and committing
 * it: whole up to `maxResponseBytes`, past it only counted and committed without its body (a retry
 * then gets `409 ERR_ONCELY_RESPONSE_NOT_STORED`, never a second run).
 */

import type { HttpDecision, HttpResponse } from '../http.ts';
import { bodyAllowed } from '../http-rules.ts';
import type { CommitOutcome } from '../oncely.ts';
import { concat } from './concat.ts';

/** A response without its body: what is known once the head is. */
export type ResponseHead = Omit<HttpResponse, 'body'>;

type Execute = Extract<HttpDecision, { kind: 'execute' }>;

/** Options of {@link responseRecorder}. */
export interface ResponseRecorderOptions {
  /** The engine's `maxResponseBytes` (`http.oncely.options`): past it bytes are counted, not kept. */
  maxResponseBytes: number;
  /** The request's method: a response to `HEAD` is committed without a body (`bodyAllowed`). */
  method: string | undefined;
}

/** The body of one response, as it is produced, and its commit. */
export interface ResponseRecorder {
  /**
   * Count a chunk and keep it while the body is within the limit. The chunk is kept as given: copy
   * it first if its owner may reuse it. Returns false once the body is past the limit.
   */
  add(chunk: Uint8Array): boolean;
  /** Bytes counted so far. */
  readonly size: number;
  /**
   * Once past the limit: the chunks kept until then, handed over and forgotten, for a caller that
   * streams the rest of the body on and has still to send them.
   */
  takeChunks(): Uint8Array[];
  /** The whole body, or undefined once it went past the limit. */
  body(): Uint8Array | undefined;
  /**
   * Commit the response: with an empty body where the status or method has none, without its body
   * (`commitTooLarge`) past the limit, else whole. Call it once, before the client has the end.
   */
  commit(head: ResponseHead): Promise<CommitOutcome>;
}

const EMPTY = new Uint8Array(0);

/**
 * A recorder for the response of an execute decision.
 * @example
 * const recorder = responseRecorder(decision, { maxResponseBytes, method: req.method });
 * for await (const chunk of upstreamResponse) recorder.add(chunk);
 * await recorder.commit({ status, headers });
 */
export function responseRecorder(
  decision: Execute,
  { maxResponseBytes, method }: ResponseRecorderOptions,
): ResponseRecorder {
  let chunks: Uint8Array[] = [];
  let size = 0;
  let whole: Uint8Array | undefined;
  const body = (): Uint8Array | undefined => {
    if (size > maxResponseBytes) return undefined;
    whole ??= concat(chunks, size);
    return whole;
  };
  return {
    add(chunk) {
      size += chunk.byteLength;
      if (size > maxResponseBytes) return false;
      chunks.push(chunk);
      whole = undefined;
      return true;
    },
    get size() {
      return size;
    },
    takeChunks() {
      const taken = chunks;
      chunks = [];
      return taken;
    },
    body,
    commit(head) {
      if (!bodyAllowed(method, head.status)) return decision.commit({ ...head, body: EMPTY });
      const bytes = body();
      return bytes === undefined ? decision.commitTooLarge(head) : decision.commit({ ...head, body: bytes });
    },
  };
}
