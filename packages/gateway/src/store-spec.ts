/**
 * The `--store` value: which store, and where. Parsed and checked here, at start-up, without I/O;
 * `openStore` (store-from-url.ts) connects.
 */

/** A parsed `--store` value. */
export type StoreSpec =
  | { kind: 'memory' }
  | { kind: 'sqlite'; path: string }
  /** `prefix` from `?prefix=`, removed from the URL the client connects with. */
  | { kind: 'redis'; url: string; prefix?: string }
  /** `table` and `namespace` from `?table=` / `?namespace=`, removed from the connection string. */
  | { kind: 'postgres'; url: string; table?: string; namespace?: string };

export const STORE_FORMS =
  'memory, sqlite:<path>, redis://[:password@]host[:port][/db][?prefix=…], postgres://user[:password]@host[:port]/db[?table=…&namespace=…]';

/**
 * Parse a `--store` value. Throws a `RangeError` naming the accepted forms.
 * @example
 * parseStoreSpec('sqlite:./oncely.db'); // { kind: 'sqlite', path: './oncely.db' }
 */
export function parseStoreSpec(text: string): StoreSpec {
  const value = text.trim();
  if (value === 'memory') return { kind: 'memory' };
  if (value.startsWith('sqlite:')) {
    // `sqlite:./oncely.db`, `sqlite:/var/lib/oncely.db`, and the URL-ish `sqlite:///var/lib/oncely.db`.
    const path = value.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '') throw new RangeError('sqlite: needs a file path, e.g. sqlite:./oncely.db');
    return { kind: 'sqlite', path };
  }
  if (/^rediss?:\/\//.test(value)) {
    const url = parseUrl(value);
    const prefix = take(url, 'prefix');
    return { kind: 'redis', url: url.href, ...(prefix === undefined ? {} : { prefix }) };
  }
  if (/^postgres(ql)?:\/\//.test(value)) {
    const url = parseUrl(value);
    const table = take(url, 'table');
    const namespace = take(url, 'namespace');
    return {
      kind: 'postgres',
      url: url.href,
      ...(table === undefined ? {} : { table }),
      ...(namespace === undefined ? {} : { namespace }),
    };
  }
  throw new RangeError(`"${redact(value)}" is not a store: use one of ${STORE_FORMS}`);
}

/** The spec for messages and `--print-config`: a password in the URL is shown as `***`. */
export function describeStore(spec: StoreSpec): string {
  switch (spec.kind) {
    case 'memory':
      return 'memory';
    case 'sqlite':
      return `sqlite:${spec.path}`;
    case 'redis':
      return withParams(redact(spec.url), { prefix: spec.prefix });
    case 'postgres':
      return withParams(redact(spec.url), { table: spec.table, namespace: spec.namespace });
  }
}

function parseUrl(value: string): URL {
  try {
    return new URL(value);
  } catch {
    throw new RangeError(`"${redact(value)}" is not a valid URL`);
  }
}

/** Remove a query parameter of ours, so the driver never sees it. */
function take(url: URL, name: string): string | undefined {
  const value = url.searchParams.get(name);
  url.searchParams.delete(name);
  if (value === '') throw new RangeError(`${name}= must not be empty`);
  return value ?? undefined;
}

function withParams(url: string, params: Record<string, string | undefined>): string {
  const parsed = new URL(url);
  for (const [name, value] of Object.entries(params))
    if (value !== undefined) parsed.searchParams.set(name, value);
  return parsed.href;
}

function redact(value: string): string {
  try {
    const url = new URL(value);
    if (url.password !== '') url.password = '***';
    return url.href;
  } catch {
    return value.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}
