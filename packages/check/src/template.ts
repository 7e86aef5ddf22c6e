/**
 * Request body templates. `{{unique}}` stands for a value unique to one logical operation: every new
 * key gets a fresh one, every retry of that key sends the same bytes again. An API that dedupes on a
 * business field (an order number) would hide its key handling behind that field otherwise.
 */

/** The placeholder of a value unique to each operation (digits only, so it fits a JSON string or number). */
export const UNIQUE = '{{unique}}';
/** The placeholder of the test tenant in `--tenant-header` (one per run; the isolation case mints a second). */
export const TENANT = '{{tenant}}';

/** The template with every `{{unique}}` replaced. */
export function render(template: string, unique: string): string {
  return template.replaceAll(UNIQUE, unique);
}

/**
 * A source of unique values for one run: digits from the start time, a random offset and a counter,
 * so values never repeat within a run and are unlikely to meet another run's.
 */
export function uniqueValues(now: number = Date.now()): () => string {
  let next = now * 1000 + Math.floor(Math.random() * 1000);
  return () => String(next++);
}

/** How the "same key, another body" case makes its other payload, and what it changed. */
export interface OtherBody {
  /** The other payload for an operation whose first body is `first` (rendered with `unique`). */
  make: (first: { unique: string; text: string }, fresh: () => string) => string;
  /** What differs, for the report: `--other-body`, `amount: 1999 → 2000`, `{{unique}}`. */
  describe: string;
}

/**
 * The other payload: `--other-body` if given; else the body's first JSON number (outside strings)
 * plus one; else the body with another `{{unique}}`; else none (the case is skipped).
 */
export function otherBody(template: string, explicit: string | undefined): OtherBody | undefined {
  if (explicit !== undefined) {
    return { make: ({ unique }) => render(explicit, unique), describe: 'the --other-body template' };
  }
  const sample = render(template, '1');
  let parsed: unknown;
  try {
    parsed = JSON.parse(sample);
  } catch {
    parsed = undefined;
  }
  const found = parsed === undefined ? undefined : firstNumber(parsed, '');
  if (found) {
    return {
      make: ({ text }) => {
        const value = JSON.parse(text) as unknown;
        const at = firstNumber(value, '');
        if (!at) return text;
        at.set(at.value + 1);
        return JSON.stringify(value);
      },
      describe: `${found.path}: ${found.value} → ${found.value + 1}`,
    };
  }
  if (template.includes(UNIQUE)) {
    return { make: (_first, fresh) => render(template, fresh()), describe: `another ${UNIQUE}` };
  }
  return undefined;
}

interface NumberAt {
  path: string;
  value: number;
  set: (value: number) => void;
}

/** The first safe-integer-or-finite number leaf, depth first, with a setter. */
function firstNumber(value: unknown, path: string): NumberAt | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (usable(item))
        return {
          path: `${path}[${i}]`,
          value: item,
          set: (v) => {
            value[i] = v;
          },
        };
      const inner = firstNumber(item, `${path}[${i}]`);
      if (inner) return inner;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    for (const [name, item] of Object.entries(record)) {
      const at = path ? `${path}.${name}` : name;
      if (usable(item))
        return {
          path: at,
          value: item,
          set: (v) => {
            record[name] = v;
          },
        };
      const inner = firstNumber(item, at);
      if (inner) return inner;
    }
  }
  return undefined;
}

// Beyond 2^53 a parsed number is already rounded: adding one could leave the payload unchanged.
const usable = (item: unknown): item is number =>
  typeof item === 'number' && Number.isFinite(item) && Math.abs(item) < Number.MAX_SAFE_INTEGER;
