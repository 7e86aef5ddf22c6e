import { memoryStore } from '@oncely/core';
import { describeStoreContract } from './index.ts';

describeStoreContract({
  name: 'memory',
  create: () => memoryStore({ sweepIntervalMs: 0 }),
  inspectable: true,
});
