/**
 * codec.ts: the cached-part record AAD is byte-for-byte `aad(kind, id, version, field)` (a
 * different byte would make every stored record unreadable), and sealed records still bind
 * their row, version and field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { aad, RootKey } from '../crypto/index.js';
import { NoncePool, RecordSealer, recordAad } from './codec.js';
import { Keyring } from './keyring.js';
import { StoreError } from './types.js';


/** A sealer over a derived keyring with one block of seals reserved (the store reserves before writes). */
function sealerWithBlock(root: RootKey): RecordSealer {
  const k = Keyring.derive(root);
  k.storage.reserve(2 ** 31);
  return new RecordSealer(k);
}

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
  const s = sealerWithBlock(RootKey.generate());
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

test('NoncePool hands out each CSPRNG byte once: no repeated 12-byte nonce across pool refills', () => {
  const pool = new NoncePool();
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) { // ~15 refills of the 4 KiB pool
    const n = pool.take(12);
    assert.equal(n.length, 12);
    const hex = Buffer.from(n).toString('hex');
    assert.ok(!seen.has(hex), 'repeated nonce');
    seen.add(hex);
  }
  assert.equal(pool.take(0).length, 0);
  assert.equal(pool.take(5000).length, 5000); // larger than the pool: straight from the CSPRNG
  const a = pool.take(12);
  a.fill(0xff); // the caller owns its copy; the pool is not affected
  assert.notDeepEqual(Buffer.from(pool.take(12)), Buffer.alloc(12, 0xff));
  pool.destroy();
});

test('D8: two seals of the same values never share a nonce or a ciphertext', () => {
  const s = sealerWithBlock(RootKey.generate());
  try {
    const id = s.secretId('a/b');
    const blobs = Array.from({ length: 2000 }, () => s.sealValues(id, 1, { k: 'v' }));
    const nonces = new Set(blobs.map((b) => b.subarray(5, 17).toString('hex')));
    assert.equal(nonces.size, blobs.length);
    for (const b of blobs.slice(0, 10)) assert.deepEqual({ ...s.openValues(id, 1, b) }, { k: 'v' });
  } finally {
    s.destroy();
  }
});
