// The store contract on the real servers for the layout no single store package owns: Redis in front
// of PostgreSQL. (Each store's own package runs the contract on its own.)
import { describeStoreContract } from '@oncely/conformance';
import { testStores } from './index.ts';

const tiered = testStores().find((kind) => kind.name === 'tiered')!;
describeStoreContract({
  name: 'tiered (redis + postgres)',
  inspectable: true,
  create: () => tiered.store(),
  cleanup: tiered.cleanup,
});
