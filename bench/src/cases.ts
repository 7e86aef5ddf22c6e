/** Every case the harness measures, and which bare baseline each is compared with. */
import type { Framework, StoreKind, Variant } from './server/spec.ts';

/** `bare`: no idempotency, `first`: a new key every request, `replay`: a completed key every request. */
export type PathKind = 'bare' | 'first' | 'replay';
export type Group = 'baseline' | 'oncely' | 'gateway' | 'peer';

export interface Case {
  id: string;
  group: Group;
  framework: Framework;
  variant: Variant;
  store?: StoreKind;
  path: PathKind;
  /** The `id` of the bare case measured in the same run that this one is divided by. */
  baseline: string;
  /** Gateway cases: the gateway's store, in front of a bare Fastify upstream. */
  gatewayStore?: 'memory';
  /** The label in tables and the chart. */
  label: string;
}

export const FRAMEWORKS: readonly Framework[] = ['express', 'fastify', 'hono'];
export const STORES: readonly StoreKind[] = ['memory', 'sqlite', 'redis', 'postgres'];
/** NestJS on each of its platforms, bare and with @oncely/nestjs (memory and Redis). */
export const NEST_FRAMEWORKS: readonly Framework[] = ['nest-express', 'nest-fastify'];
const NEST_STORES: readonly StoreKind[] = ['memory', 'redis'];
const platformOf = (framework: Framework): string => framework.replace(/^nest-/, '');
const PEERS = [
  ['express-idempotency', 'express-idempotency + redis adapter'],
  ['node-idempotency', '@node-idempotency/core + redis'],
  ['powertools', 'Powertools idempotency + redis'],
] as const;

export function allCases(): Case[] {
  const cases: Case[] = [];
  for (const framework of FRAMEWORKS) {
    cases.push({
      id: `${framework}-bare`,
      group: 'baseline',
      framework,
      variant: 'bare',
      path: 'bare',
      baseline: `${framework}-bare`,
      label: `${framework} (bare)`,
    });
  }
  for (const framework of FRAMEWORKS) {
    for (const store of STORES) {
      for (const path of ['first', 'replay'] as const) {
        cases.push({
          id: `${framework}-oncely-${store}-${path}`,
          group: 'oncely',
          framework,
          variant: 'oncely',
          store,
          path,
          baseline: `${framework}-bare`,
          label: `@oncely/${framework} + ${store}`,
        });
      }
    }
  }
  for (const framework of NEST_FRAMEWORKS) {
    cases.push({
      id: `${framework}-bare`,
      group: 'baseline',
      framework,
      variant: 'bare',
      path: 'bare',
      baseline: `${framework}-bare`,
      label: `nest on ${platformOf(framework)} (bare)`,
    });
    for (const store of NEST_STORES) {
      for (const path of ['first', 'replay'] as const) {
        cases.push({
          id: `${framework}-oncely-${store}-${path}`,
          group: 'oncely',
          framework,
          variant: 'oncely',
          store,
          path,
          baseline: `${framework}-bare`,
          label: `@oncely/nestjs on ${platformOf(framework)} + ${store}`,
        });
      }
    }
  }
  for (const path of ['first', 'replay'] as const) {
    cases.push({
      id: `gateway-memory-${path}`,
      group: 'gateway',
      framework: 'fastify',
      variant: 'bare',
      path,
      baseline: 'fastify-bare',
      gatewayStore: 'memory',
      label: 'oncely proxy (memory) → fastify',
    });
  }
  for (const [variant, label] of PEERS) {
    for (const path of ['first', 'replay'] as const) {
      cases.push({
        id: `express-${variant}-${path}`,
        group: 'peer',
        framework: 'express',
        variant,
        store: 'redis',
        path,
        baseline: 'express-bare',
        label: `express + ${label}`,
      });
    }
  }
  return cases;
}

/**
 * Quick mode (under 3 minutes): every baseline, peer and gateway case; Oncely on Express (the peers'
 * framework) with every store, on Fastify with memory and Redis, on Hono and on Nest (both
 * platforms) with memory.
 */
export function quickCases(): Case[] {
  const keep: Record<string, readonly string[]> = {
    express: STORES,
    fastify: ['memory', 'redis'],
    hono: ['memory'],
    'nest-express': ['memory'],
    'nest-fastify': ['memory'],
  };
  return allCases().filter((c) => c.group !== 'oncely' || (keep[c.framework] ?? []).includes(c.store ?? ''));
}
