/**
 * @oncely/conformance: the suites every Oncely store (and, later, every adapter) must pass.
 * Run them from your own `node:test` files against your real backend.
 */

export {
  describeHttpBehaviour,
  type HttpBehaviourOptions,
  type HttpTestSetup,
  type RunningServer,
  TestApp,
} from './http-behaviour.ts';
export { type LineWorker, startLineWorker } from './line-worker.ts';
export { describeStoreContract, type StoreContractOptions } from './store-contract.ts';
export { nextMessage, type WorkerMessageBase } from './worker-messages.ts';
