/**
 * codec.ts: the cached-part record AAD is byte-for-byte `aad(kind, id, version, field)` (a
 * different byte would make every stored record unreadable), and sealed records still bind
 * their row, version and field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { aad, RootKey } from '../crypto/index.js';
import { RecordSealer, recordAad } from './codec.js';
import { StoreError } from './types.js';

test('recordAad equals aad(kind, id, version, field) for any id and version', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('spike/secret', 'spike/policy', 'x'),
      fc.uint8Array({ minLength: 0, maxLength: 64 }),
      fc.oneof(fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER), fc.nat(), fc.maxSafeNat(), fc.integer({ min: -1000, max: -1 })),
      fc.constantFrom('path', 'meta', 'values', 'body', 'ünïcødé'),
      (kind, id, version, field) => {
        assert.deepEqual(Buffer.from(recordAad(kind, id, version, field)), Buffer.from(aad(kind, id, version, field)));
      },
    ),
    { numRuns: 2000 },
  );
});

test('D8: a values blob opens only under its own id and version', () => {
  const s = new RecordSealer(RootKey.generate());
  try {
    const id = s.secretId('a/b');
    const other = s.secretId('a/c');
    const blob = s.sealValues(id, 2, { k: 'v' });
    assert.deepEqual({ ...s.openValues(id, 2, blob) }, { k: 'v' });
    assert.throws(() => s.openValues(id, 1, blob), (e: unknown) => e instanceof StoreError && e.code === 'store_integrity');
    assert.throws(() => s.openValues(other, 2, blob), (e: unknown) => e instanceof StoreError && e.code === 'store_integrity');
  } finally {
    s.destroy();
  }
});
