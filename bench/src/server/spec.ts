/** What a child server process runs: sent to it as JSON in argv, so the parent and child agree on one shape. */
export type Framework = 'express' | 'fastify' | 'hono' | 'nest-express' | 'nest-fastify';
export type Variant = 'bare' | 'oncely' | 'express-idempotency' | 'node-idempotency' | 'powertools';
export type StoreKind = 'memory' | 'sqlite' | 'redis' | 'postgres';

export interface ServerSpec {
  framework: Framework;
  variant: Variant;
  /** Oncely's store; the peers always use Redis. */
  store?: StoreKind;
  /** Unique per case run: Redis prefix, PostgreSQL table suffix, SQLite file name, peers' key prefix. */
  tag: string;
  sqlitePath?: string;
  redisUrl: string;
  databaseUrl: string;
  /** Size of a padding field in the response body (the 512 KiB replay test); 0 for the small JSON. */
  bodyBytes?: number;
}

/** Messages over the IPC channel, parent → child. */
export type Request = { id: number; type: 'effects'; keys: string[] } | { id: number; type: 'rss' };

/** Child → parent. */
export type Reply =
  | { type: 'ready'; port: number }
  | { id: number; type: 'effects'; executions: number; perKey: Record<string, number> }
  | { id: number; type: 'rss'; rss: number; heapUsed: number; external: number };
