// The HTTP behaviour suite of @oncely/conformance against the gateway in front of a plain node:http
// upstream, on every store: memory, SQLite, and the real Redis (REDIS_URL) and PostgreSQL
// (DATABASE_URL), alone and tiered. An unreachable server fails its suite with a message; nothing skips.
import { describeHttpBehaviour } from '@oncely/conformance';
import { testStores } from '@oncely/test-stores';
import { startSuiteGateway } from './test-gateway.ts';

for (const kind of testStores()) {
  describeHttpBehaviour({ ...kind, name: `gateway + ${kind.name}`, start: startSuiteGateway });
}
