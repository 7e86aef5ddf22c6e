/**
 * `oncely demo`: the payments example of the repository (examples/payments), run in this process.
 * The example is not published with the package, so the demo exists only in a checkout; elsewhere
 * it says so. In-process rather than a child: the example handles SIGINT and SIGTERM itself, and
 * nothing is left running when `oncely demo` is killed.
 */

import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The example's entry: src/cli.ts and dist/cli.js both sit two levels below the repository's packages/. */
export const DEMO_ENTRY = fileURLToPath(new URL('../../../examples/payments/src/main.ts', import.meta.url));

export interface DemoOptions {
  port: number;
  host: string;
  /** Where the example keeps its SQLite files. */
  dir: string;
  /** The environment the example reads its settings from (the CLI passes `process.env`). */
  env: Record<string, string | undefined>;
}

/** Start the demo; resolves once it listens (it prints its own banner). Throws when the example is not there. */
export async function startDemo(options: DemoOptions): Promise<void> {
  if (!existsSync(DEMO_ENTRY)) {
    throw new Error(
      'oncely demo runs the payments example of the Oncely repository (examples/payments), which is not ' +
        'published with @oncely/gateway: run it from a checkout (git clone, npm install, npx oncely demo)',
    );
  }
  // The example reads its settings from the environment when it loads.
  options.env.PORT = String(options.port);
  options.env.HOST = options.host;
  options.env.ONCELY_DEMO_DIR = options.dir;
  await import(pathToFileURL(DEMO_ENTRY).href);
}
