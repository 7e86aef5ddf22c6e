// The HTTP behaviour suite of every adapter, against a Nest app on Express and on Fastify, on every
// store over real HTTP: memory, SQLite, and the real Redis and PostgreSQL (and the tiered pair).
import { after } from 'node:test';
import { describeHttpBehaviour, type HttpTestSetup, type RunningServer } from '@oncely/conformance';
import { testStores } from '@oncely/test-stores';
import { buildTestApps } from './test-build.ts';

type Start = (setup: HttpTestSetup) => Promise<RunningServer>;

const build = await buildTestApps();
after(() => build.remove());
const { startSuiteServer } = await build.load<{ startSuiteServer(platform: string): Start }>('suite-app');

for (const platform of ['express', 'fastify']) {
  for (const kind of testStores()) {
    describeHttpBehaviour({
      ...kind,
      name: `nestjs on ${platform} + ${kind.name}`,
      start: startSuiteServer(platform),
    });
  }
}
