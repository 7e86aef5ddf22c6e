/**
 * The one trivial handler every case runs: JSON in, 201 JSON out, and a side-effect counter so the
 * harness can see how often the work really ran.
 */

/** Side effects seen by this process. */
export const effects = {
  executions: 0,
  /**
   * Per-key counts only for correctness keys (`chk-`): counting all 100k memory-test keys would add
   * a Map of our own to the RSS we are measuring.
   */
  perKey: new Map<string, number>(),
};

let padding = '';

/** A response body padded to about `bytes` bytes (the large-response replay test). */
export function setPadding(bytes: number): void {
  padding = 'x'.repeat(bytes);
}

export interface PaymentInput {
  key: string | undefined;
  body: unknown;
  /** Simulated downstream latency (ms) from the `x-work-ms` header: widens the race window. */
  workMs: number;
}

export interface Payment {
  id: string;
  status: 'succeeded';
  amount: unknown;
  currency: unknown;
  pad?: string;
}

/** The side effect: count it, then answer. */
export async function createPayment(input: PaymentInput): Promise<Payment> {
  if (input.workMs > 0) await new Promise((resolve) => setTimeout(resolve, input.workMs));
  effects.executions++;
  const key = input.key;
  if (key?.startsWith('chk-')) effects.perKey.set(key, (effects.perKey.get(key) ?? 0) + 1);
  const body = (input.body ?? {}) as { amount?: unknown; currency?: unknown };
  const payment: Payment = {
    id: `pay_${effects.executions}`,
    status: 'succeeded',
    amount: body.amount,
    currency: body.currency,
  };
  if (padding) payment.pad = padding;
  return payment;
}

/** `x-work-ms` as a number (0 when absent). */
export function workMsOf(value: unknown): number {
  const n = Number(Array.isArray(value) ? value[0] : value);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 1000) : 0;
}
