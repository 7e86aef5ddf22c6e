/**
 * What the engine reports through `onEvent`. Library code never logs: events are how an application
 * counts outcomes, alerts on store failures and traces a key (by its hash, never the raw key).
 */
export type OncelyEventType =
  | 'executed'
  | 'replayed'
  | 'conflict'
  | 'mismatch'
  | 'lease_lost'
  | 'store_error'
  | 'completed'
  | 'released'
  | 'client_gone'
  | 'execution_timeout';

/** The store step an event is about. */
export type StoreOperation = 'acquire' | 'complete' | 'extend' | 'release' | 'get';

export interface OncelyEvent {
  type: OncelyEventType;
  /** The tenant scope given to `begin` ('' when none). */
  scope: string;
  /** The record id: sha256 of scope and key. Safe to log. */
  keyHash: string;
  /** Engine clock at the time of the event. */
  at: number;
  /** `executed`: the key was taken over from an owner whose lease ended. */
  takeover?: boolean;
  /** `executed`: false when the store was down and `failOpen` let the work run unrecorded. */
  recorded?: boolean;
  /** `replayed`: false when the work completed but its response was too large to keep. */
  responseStored?: boolean;
  /** `completed` / `released`: the response status that was kept or let go. */
  status?: number;
  /** `store_error`: which step failed, and the error. */
  operation?: StoreOperation;
  error?: unknown;
}
