// The envelope adapters and the payload hash, on deliveries as the brokers' clients hand them over
// (the subscription tests read the same from the real servers).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isOncelyError } from '@oncely/core';
import { jetStreamMessage, payloadHash, rabbitMessage } from './index.ts';

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const code = (expected: string) => (error: unknown) => isOncelyError(error) && error.code === expected;

describe('payloadHash', () => {
  it('is the same for the same type and JSON value, whatever the key order', () => {
    const a = payloadHash({ type: 'order.paid', payload: { order: 'o_1', amount: 500, lines: [1, 2] } });
    const b = payloadHash({ type: 'order.paid', payload: { lines: [1, 2], amount: 500, order: 'o_1' } });
    assert.equal(a, b);
    assert.match(a, /^[0-9a-f]{64}$/);
  });

  it('differs with the payload or the type', () => {
    const base = payloadHash({ type: 'order.paid', payload: { amount: 500 } });
    assert.notEqual(payloadHash({ type: 'order.paid', payload: { amount: 501 } }), base);
    assert.notEqual(payloadHash({ type: 'order.refunded', payload: { amount: 500 } }), base);
    // Length-prefixed parts: a type and a payload never run into each other.
    assert.notEqual(payloadHash({ type: 'a', payload: 'bc' }), payloadHash({ type: 'a"', payload: 'c' }));
  });

  it('refuses what is not a JSON value', () => {
    assert.throws(() => payloadHash({ type: 't', payload: undefined }), code('ERR_ONCELY_BODY_AMBIGUOUS'));
  });
});

describe('jetStreamMessage', () => {
  const headers = (pairs: Array<[string, string]>) => pairs.map(([k, v]) => [k, [v]] as [string, string[]]);

  it('reads the envelope headers case-insensitively and keeps the rest', () => {
    const raw = {
      data: json({ amount: 500 }),
      headers: headers([
        ['nats-msg-id', 'm-1'],
        ['Oncely-Type', 'order.paid'],
        ['Oncely-Key', 'o_1'],
        ['Content-Type', 'application/json; charset=utf-8'],
        ['Trace-Id', 't-1'],
      ]),
    };
    const m = jetStreamMessage(raw);
    assert.deepEqual(
      { id: m.id, type: m.type, key: m.key, headers: m.headers, payload: m.payload },
      { id: 'm-1', type: 'order.paid', key: 'o_1', headers: { 'Trace-Id': 't-1' }, payload: { amount: 500 } },
    );
    assert.equal(m.raw, raw);
  });

  it('refuses a missing or unusable id and a body that is not JSON', () => {
    assert.throws(() => jetStreamMessage({ data: json({}) }), code('ERR_ONCELY_KEY_MISSING'));
    assert.throws(
      () => jetStreamMessage({ data: json({}), headers: headers([['Nats-Msg-Id', 'x'.repeat(256)]]) }),
      code('ERR_ONCELY_KEY_INVALID'),
    );
    assert.throws(
      () => jetStreamMessage({ data: new Uint8Array([0xff]), headers: headers([['Nats-Msg-Id', 'm']]) }),
      code('ERR_ONCELY_BODY_AMBIGUOUS'),
    );
    assert.throws(
      () => jetStreamMessage({ data: new Uint8Array(), headers: headers([['Nats-Msg-Id', 'm']]) }),
      code('ERR_ONCELY_BODY_AMBIGUOUS'),
    );
  });
});

describe('rabbitMessage', () => {
  it('reads id and type from the properties, the key from oncely-key, headers as text', () => {
    const m = rabbitMessage({
      content: json([1]),
      properties: {
        messageId: 'm-1',
        type: 'order.paid',
        contentType: 'application/vnd.oncely+json',
        headers: {
          'oncely-key': 'o_1',
          n: 3,
          flag: true,
          bytes: Buffer.from('hé'),
          'x-death': [{ count: 1, reason: 'rejected' }],
          gone: undefined,
        },
      },
    });
    assert.deepEqual(
      { id: m.id, type: m.type, key: m.key, headers: m.headers, payload: m.payload },
      {
        id: 'm-1',
        type: 'order.paid',
        key: 'o_1',
        headers: { n: '3', flag: 'true', bytes: 'hé', 'x-death': '[{"count":1,"reason":"rejected"}]' },
        payload: [1],
      },
    );
  });

  it('refuses a missing messageId and a content type other than JSON', () => {
    assert.throws(() => rabbitMessage({ content: json({}), properties: {} }), code('ERR_ONCELY_KEY_MISSING'));
    assert.throws(
      () => rabbitMessage({ content: json({}), properties: { messageId: 'm', contentType: 'text/plain' } }),
      code('ERR_ONCELY_BODY_AMBIGUOUS'),
    );
  });
});
