/**
 * What a chaos run records, all on one time base: every client attempt, every execution of the work,
 * every kill. The checks (checks.ts) read nothing else, so a finding can always be shown as a timeline.
 */

/**
 * Wall-clock milliseconds with sub-millisecond resolution. The server processes use the same
 * function, so an execution a child reports and an answer the driver received compare directly.
 */
export const now = (): number => performance.timeOrigin + performance.now();

/** One request of the driver to one server process. */
export interface Attempt {
  key: string;
  /** The server role asked (`gateway`, `adapter`, `tx-a`, `tx-b`). */
  role: string;
  /** The process asked. */
  pid: number;
  sentAt: number;
  /** When the body had been read (or the request failed). */
  endedAt: number;
  /** The client's AbortSignal deadline for this attempt. */
  timeoutMs: number;
  /** `timeout`: the client's AbortSignal fired; `error`: no response (connection refused, reset). */
  outcome: 'response' | 'timeout' | 'error';
  status?: number;
  body?: Buffer;
  /** `Idempotent-Replayed: true` was set. */
  replayed?: boolean;
  error?: string;
}

/** One run of the work for a key: a request reaching the counting upstream, or a transaction's work starting. */
export interface Execution {
  key: string;
  /** The unique id the work put into its success body. */
  exec: string;
  /** The server process that ran it. */
  pid: number;
  at: number;
}

/** One SIGKILL the chaos loop sent. */
export interface Kill {
  role: string;
  pid: number;
  /** Right after `kill(2)` returned. */
  at: number;
}
