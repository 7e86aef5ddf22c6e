/**
 * @oncely/conformance: the suites every Oncely store (and, later, every adapter) must pass.
 * Run them from your own `node:test` files against your real backend.
 */
export { describeStoreContract, type StoreContractOptions } from './store-contract.ts';
