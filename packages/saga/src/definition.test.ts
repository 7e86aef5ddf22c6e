import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inbox } from '@oncely/consumer';
import { outbox } from '@oncely/outbox';
import type { StepDefinition } from './definition.ts';
import { saga } from './saga.ts';

const cmd = { command: () => ({ topic: 't.x', type: 'x', payload: null }) };
const local = { local: () => undefined };
const c = (name: string): StepDefinition => ({ name, kind: 'compensatable', action: cmd, compensation: cmd });
const p = (name: string): StepDefinition => ({ name, kind: 'pivot', action: cmd });
const r = (name: string): StepDefinition => ({ name, kind: 'retriable', action: local });
const build = (steps: unknown, extra: Record<string, unknown> = {}) =>
  saga({
    name: 'order',
    steps: steps as StepDefinition[],
    outbox: outbox(),
    inbox: inbox({ consumer: 'order-saga', retentionMs: 1000 }),
    replyTopic: 'orders.replies',
    ...extra,
  });
const refused = (steps: unknown, message: RegExp, extra?: Record<string, unknown>) =>
  assert.throws(
    () => build(steps, extra),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, 'ERR_ONCELY_INVALID_OPTION');
      assert.match(error.message, message);
      return true;
    },
  );

describe('saga definitions', () => {
  it('accepts compensatable*, pivot?, retriable*', () => {
    build([c('a'), c('b'), p('c'), r('d'), r('e')]);
    build([c('a'), p('b')]);
    build([p('a'), r('b')]);
    build([c('a'), c('b')]);
    build([r('a')]);
  });
  it('refuses a compensatable step after the pivot: it would compensate past it', () => {
    refused(
      [c('a'), p('b'), c('c')],
      /compensatable but comes after pivot step "b".*compensate past the pivot/,
    );
    refused([p('a'), r('b'), c('c')], /compensatable but comes after retriable/);
  });
  it('refuses retriable steps before the pivot', () => {
    refused([r('a'), p('b')], /pivot after retriable step "a"/);
    refused([c('a'), r('b')], /retriable right after compensatable step "a"/);
  });
  it('refuses a second pivot', () => refused([p('a'), p('b')], /second pivot/));
  it('requires a compensation exactly where one can run', () => {
    refused([{ name: 'a', kind: 'compensatable', action: cmd }], /compensatable but has no compensation/);
    refused([{ name: 'a', kind: 'pivot', action: cmd, compensation: cmd }], /never compensated/);
    refused([p('a'), { name: 'b', kind: 'retriable', action: cmd, compensation: cmd }], /never compensated/);
  });
  it('checks names, kinds, actions and options', () => {
    refused([], /non-empty/);
    refused([c('a'), c('a')], /defined twice/);
    refused([{ ...c('a'), name: 'a b' }], /"name" must match/);
    refused([{ ...c('a'), kind: 'maybe' }], /"kind"/);
    refused([{ ...c('a'), action: { command: cmd.command, local: local.local } }], /exactly one/);
    refused([{ ...c('a'), timeoutMs: 0 }], /"timeoutMs" must be a positive integer/);
    refused([{ ...c('a'), retries: 3 }], /unknown field "retries"/);
    refused([c('a')], /unknown option "timeout"/, { timeout: 5 });
    refused([c('a')], /"replyTopic"/, { replyTopic: 'has space' });
    refused([c('a')], /"table"/, { table: 'Bad-Name' });
  });
});
