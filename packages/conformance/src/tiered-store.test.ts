import { memoryStore, tieredStore } from '@oncely/core';
import { describeStoreContract } from './index.ts';

// The contract holds for the composition itself; the real layout (Redis in front of PostgreSQL) runs
// the same suite in @oncely/redis's tests.
describeStoreContract({
  name: 'tiered (memory + memory)',
  inspectable: true,
  create: () =>
    tieredStore({ cache: memoryStore({ sweepIntervalMs: 0 }), durable: memoryStore({ sweepIntervalMs: 0 }) }),
});
