/**
 * @oncely/gateway: Idempotency-Key handling in front of any HTTP service, as a reverse proxy, and the
 * `oncely` CLI that runs it (`oncely proxy`), the demo, and store inspection (`oncely keys`).
 */

export { RELEASE_HEADER } from './forward-headers.ts';
export {
  createGateway,
  GATEWAY_DEFAULTS,
  type Gateway,
  type GatewayLogEntry,
  type GatewayOptions,
} from './gateway.ts';
export { type CommitResult, GatewayMetrics, OUTCOMES, type Outcome } from './metrics.ts';
export { gatewayRecordId, scopeOf } from './scope.ts';
export { formatDuration, formatSize, parseDuration, parseSize } from './units.ts';
