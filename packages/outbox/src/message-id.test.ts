import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  isUuid,
  MESSAGE_ID_NAMESPACE,
  messageId,
  uuidV5,
  uuidV7Generator,
  uuidV7Time,
} from './message-id.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('uuidV7Generator', () => {
  it('makes version 7, variant 0b10 ids carrying the clock in milliseconds', () => {
    const at = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
    const next = uuidV7Generator(() => at);
    const id = next();
    assert.match(id, V7);
    assert.equal(uuidV7Time(id), at);
    assert.equal(
      id.slice(0, 13),
      `${at.toString(16).padStart(12, '0').slice(0, 8)}-${at.toString(16).slice(-4)}`,
    );
  });

  it('is strictly increasing within one millisecond, across milliseconds and when the clock steps back', () => {
    let now = 1_700_000_000_000;
    const next = uuidV7Generator(() => now);
    const ids: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      if (i % 5000 === 4999)
        now -= 3; // a clock step back
      else if (i % 997 === 0) now += 1;
      ids.push(next());
    }
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} < ${ids[i]}`);
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, V7);
  });

  it('starts from fresh random bits in each new millisecond, so two generators rarely meet', () => {
    const a = uuidV7Generator(() => 5)();
    const b = uuidV7Generator(() => 5)();
    assert.notEqual(a, b);
    assert.equal(a.slice(0, 13), b.slice(0, 13));
  });

  it('refuses a clock that does not give epoch milliseconds', () => {
    assert.throws(() => uuidV7Generator(() => Number.NaN)(), RangeError);
    assert.throws(() => uuidV7Generator(() => -1)(), RangeError);
    assert.throws(() => uuidV7Generator(() => 2 ** 48)(), RangeError);
  });
});

describe('uuidV5 and messageId', () => {
  it('matches the RFC 9562 test vector (DNS namespace, www.example.com)', () => {
    assert.equal(
      uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8'),
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
  });

  it('derives a stable version 5 id from a business key, and keeps a UUID key as it is', () => {
    const id = messageId('order_123:paid');
    assert.equal(id, uuidV5('order_123:paid', MESSAGE_ID_NAMESPACE));
    assert.equal(messageId('order_123:paid'), id);
    assert.notEqual(messageId('order_123:shipped'), id);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(messageId('0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B'), '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b');
    assert.ok(isUuid(id));
    assert.throws(() => messageId(''), TypeError);
  });
});
