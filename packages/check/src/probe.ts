/**
 * What the cases send through: requests built from the options (headers, tenant, key, body), the
 * count URL, and retries of a key that is still in progress. Every request goes to the audited
 * origin; the probe counts them, so the report can say how many were sent.
 */

import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CheckError } from './errors.ts';
import { type Exchange, Wire } from './exchange.ts';
import type { ResolvedOptions } from './options.ts';
import { type AbandonedRequest, rawExchange, rawOpen } from './raw.ts';
import { render, TENANT, uniqueValues } from './template.ts';

/** At most this many requests per key that is waited for (the first included): the budget's bound. */
export const MAX_POLLS = 12;

export type TenantSlot = 'a' | 'b';

export interface Payload {
  /** The `{{unique}}` value of this operation. */
  unique: string;
  text: string;
}

export interface SendInit {
  /** The key (unformatted); `null` sends none. */
  key: string | null;
  body: string;
  tenant?: TenantSlot;
}

/** A count URL's answer as a number: a bare number, a JSON array, `count`/`total`, or `data`/`items`/`results`. */
export function readCount(exchange: Exchange): number | undefined {
  if (exchange.status < 200 || exchange.status >= 300) return undefined;
  const text = exchange.body.toString('utf8').trim();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (Array.isArray(value)) return value.length;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    for (const name of ['count', 'total', 'total_count', 'totalCount']) {
      if (typeof record[name] === 'number' && Number.isInteger(record[name])) return record[name];
    }
    for (const name of ['data', 'items', 'results']) {
      const list = record[name];
      if (Array.isArray(list)) return list.length;
    }
  }
  return undefined;
}

export class Probe {
  readonly options: ResolvedOptions;
  /** Every key of this run starts with it. */
  readonly keyPrefix: string;
  readonly #wire = new Wire();
  readonly #unique = uniqueValues();
  readonly #run: string;
  #raw = 0;
  /** The first request's time (the replay case sets it): when the disconnecting client leaves. */
  firstMs: number | undefined;

  constructor(options: ResolvedOptions, run: string = randomBytes(4).toString('hex')) {
    this.options = options;
    this.#run = run;
    this.keyPrefix = `oncely-check-${run}-`;
  }

  /** Requests sent so far. */
  get sent(): number {
    return this.#wire.sent + this.#raw;
  }

  /** A key for a case, e.g. `oncely-check-1a2b3c4d-replay`. */
  key(name: string): string {
    return `${this.keyPrefix}${name}`;
  }

  /** The key as the header value. */
  keyValue(key: string): string {
    return this.options.keyFormat === 'sf-string' ? `"${key}"` : key;
  }

  /** A fresh `{{unique}}` value. */
  fresh = (): string => this.#unique();

  /** A new operation's payload from `template` (the body by default). */
  payload(template: string = this.options.body): Payload {
    const unique = this.#unique();
    return { unique, text: render(template, unique) };
  }

  /** The tenant header's value for a slot: the run's test tenant, or the second one. */
  tenantValue(slot: TenantSlot): string | undefined {
    const tenant = this.options.tenant;
    if (!tenant) return undefined;
    const id = slot === 'a' ? `oncely-check-${this.#run}` : `oncely-check-${this.#run}-b`;
    return tenant.value.replaceAll(TENANT, id);
  }

  /** True when the tenant header can name a second tenant (its value has `{{tenant}}`). */
  get twoTenants(): boolean {
    return this.options.tenant?.value.includes(TENANT) ?? false;
  }

  /** The header lines of a request, the key's excepted. */
  #headers(body: string, tenant: TenantSlot): Array<[string, string]> {
    const lines: Array<[string, string]> = [...this.options.headers];
    const tenantValue = this.tenantValue(tenant);
    if (this.options.tenant && tenantValue !== undefined) lines.push([this.options.tenant.name, tenantValue]);
    if (!this.options.hasContentType && body !== '') {
      let json = true;
      try {
        JSON.parse(body);
      } catch {
        json = false;
      }
      lines.push(['Content-Type', json ? 'application/json' : 'text/plain; charset=utf-8']);
    }
    return lines;
  }

  /** One request to the audited URL. */
  send(label: string, init: SendInit): Promise<Exchange> {
    const headers = this.#headers(init.body, init.tenant ?? 'a');
    const key = init.key === null ? undefined : this.keyValue(init.key);
    if (key !== undefined) headers.push([this.options.keyHeader, key]);
    return this.#wire.send({
      label,
      method: this.options.method,
      url: this.options.url,
      headers,
      body: Buffer.from(init.body),
      key,
      timeoutMs: this.options.timeoutMs,
    });
  }

  /** One request with key header lines written as given (several, or any bytes), on its own socket. */
  raw(label: string, init: { keyLines: readonly string[]; body: string; shown: string }): Promise<Exchange> {
    this.#raw++;
    const lines = [
      ...this.#headers(init.body, 'a').map(([name, value]) => `${name}: ${value}`),
      ...init.keyLines.map((value) => `${this.options.keyHeader}: ${value}`),
    ];
    return rawExchange({
      label,
      method: this.options.method,
      url: this.options.url,
      lines,
      body: Buffer.from(init.body),
      key: init.shown,
      timeoutMs: this.options.timeoutMs,
    });
  }

  /** A request whose client will go away: sent whole on its own socket, destroyed by `abandon()`. */
  open(init: { key: string; body: string }): AbandonedRequest {
    this.#raw++;
    const lines = [
      ...this.#headers(init.body, 'a').map(([name, value]) => `${name}: ${value}`),
      `${this.options.keyHeader}: ${this.keyValue(init.key)}`,
    ];
    return rawOpen({
      label: 'abandoned',
      method: this.options.method,
      url: this.options.url,
      lines,
      body: Buffer.from(init.body),
      timeoutMs: this.options.timeoutMs,
    });
  }

  /**
   * Send, and while the answer is 409 (in progress) send again with growing pauses, until another
   * answer, `waitMs` or {@link MAX_POLLS} requests. Resolves with every exchange, the last one last.
   */
  async settle(label: string, init: SendInit): Promise<Exchange[]> {
    const started = performance.now();
    const out = [await this.send(label, init)];
    let pause = 50;
    while (out.at(-1)!.status === 409 && out.length < MAX_POLLS) {
      const left = this.options.waitMs - (performance.now() - started);
      if (left <= 0) break;
      await sleep(Math.min(pause, left));
      pause = Math.min(pause * 2, Math.max(50, this.options.waitMs / 5));
      out.push(await this.send(`${label} (${out.length + 1})`, init));
    }
    return out;
  }

  /** The count URL's number now, or undefined without a count URL (or when it answers none). */
  async count(): Promise<number | undefined> {
    const exchange = await this.#readCountUrl();
    return exchange && readCount(exchange);
  }

  /** Read the count once before the audit: a count URL that answers no number stops it here. */
  async checkCount(): Promise<void> {
    const exchange = await this.#readCountUrl();
    if (!exchange || readCount(exchange) !== undefined) return;
    const what =
      exchange.status === 0
        ? exchange.error
        : `${exchange.status} ${exchange.body.toString('utf8').slice(0, 200)}`;
    throw new CheckError(
      'ERR_ONCELY_CHECK_COUNT_UNREADABLE',
      `the count URL ${this.options.countUrl!.href} answered no count (${what}); it must answer 2xx with a number, a JSON array, {"count": n} or {"data": [...]}`,
    );
  }

  #readCountUrl(): Promise<Exchange> | undefined {
    const url = this.options.countUrl;
    if (!url) return undefined;
    return this.#wire.send({
      label: 'count',
      method: 'GET',
      url,
      headers: this.#headers('', 'a'),
      body: Buffer.alloc(0),
      timeoutMs: this.options.timeoutMs,
    });
  }

  close(): void {
    this.#wire.close();
  }
}
