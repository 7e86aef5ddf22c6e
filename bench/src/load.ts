/** One load run with autocannon against `POST /payments`, in this (the parent) process. */
import autocannon from 'autocannon';

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  errors: number;
  non2xx: number;
}

export interface LoadOptions {
  url: string;
  connections: number;
  /** Seconds; or `amount` requests instead. */
  durationS?: number;
  amount?: number;
  /** The Idempotency-Key of each request in turn. */
  nextKey: () => string;
}

/** The request body of every case: small JSON, identical, so replays match their fingerprint. */
export const PAYMENT_BODY = JSON.stringify({ amount: 4200, currency: 'EUR', customer: 'cus_bench' });

export async function load(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    ...(options.amount ? { amount: options.amount } : { duration: options.durationS ?? 1 }),
    timeout: 10,
    requests: [
      {
        method: 'POST',
        path: '/payments',
        headers: { 'content-type': 'application/json' },
        body: PAYMENT_BODY,
        // Called per request: a new (or the next pooled) key every time.
        setupRequest: (request) => ({
          ...request,
          headers: { ...request.headers, 'idempotency-key': options.nextKey() },
        }),
      },
    ],
  });
  return {
    // total / duration rather than the per-second mean, so a short run's partial last second counts.
    rps: result.requests.total / Math.max(result.duration, 0.001),
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/** Send `keys` once each, `concurrency` at a time, so they are completed before a replay run. */
export async function complete(url: string, keys: string[], concurrency = 20): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++] as string;
      const response = await fetch(`${url}/payments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: PAYMENT_BODY,
      });
      await response.arrayBuffer();
      statuses.push(response.status);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}
