/**
 * The keyring (keyring.ts): the derived keyring equals the keys a store that never rotated
 * uses; the sealed record round-trips under its root and opens under no other; generation
 * selection by key id; seal reservations and the automatic rotation at the limit; erasure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Aead, aad, derivePurposeKey, PathHasher, RootKey, wipe } from '../crypto/index.js';
import { Keyring } from './keyring.js';
import { StoreError } from './types.js';

const isCode = (code: string) => (e: unknown): boolean => e instanceof StoreError && e.code === code;
const AD = aad('t', 1);

test('keyring: the derived keyring is exactly the storage/v1, cipher/v1 and path-hmac/v1 keys (no migration)', () => {
  const root = RootKey.generate();
  const k = Keyring.derive(root);
  const key = derivePurposeKey(root, 'storage/v1');
  const old = new Aead(key, 1);
  wipe(key);
  assert.deepEqual(k.storage.ids(), [1]);
  assert.equal(k.storage.current, 1);
  assert.equal(k.cipher.current, 1);
  const env = old.seal(new Uint8Array([1, 2, 3]), AD);
  assert.deepEqual([...k.storage.aead(1)!.open(env, AD)], [1, 2, 3]);
  const h1 = new PathHasher(root);
  const h2 = k.pathHasher();
  assert.ok(h1.hash('s:a/b').equals(h2.hash('s:a/b')));
  for (const x of [h1, h2, old, k, root]) x.destroy();
});

test('keyring: the record round-trips under its root, not under another; a flipped bit is store_integrity', () => {
  const root = RootKey.generate();
  const other = RootKey.generate();
  const k = Keyring.derive(root);
  k.storage.addGeneration();
  k.storage.reserve(1000);
  k.cipher.addGeneration();
  const rec = k.seal(root);
  const back = Keyring.open(root, rec);
  assert.deepEqual(back.storage.ids(), [1, 2]);
  assert.equal(back.storage.current, 2);
  assert.equal(back.storage.reserved(2), 125);
  assert.deepEqual(back.cipher.ids(), [1, 2]);
  const env = k.storage.aead(2)!.seal(new Uint8Array([9]), AD);
  assert.deepEqual([...back.storage.aead(2)!.open(env, AD)], [9]);
  assert.throws(() => Keyring.open(other, rec), isCode('store_integrity'));
  const bad = Uint8Array.from(rec);
  bad[bad.length - 1]! ^= 1;
  assert.throws(() => Keyring.open(root, bad), isCode('store_integrity'));
  assert.equal(JSON.stringify({ k }), '{"k":"[Keyring]"}');
  for (const x of [k, back, root, other]) x.destroy();
});

test('keyring: seals only inside a reserved block; the block is counted before use (crash never under-counts)', () => {
  const root = RootKey.generate();
  const k = Keyring.derive(root);
  assert.throws(() => k.storage.takeSeal(), isCode('store_busy'));
  assert.equal(k.storage.reserve(800), false);
  assert.equal(k.storage.reserved(1), 100);
  assert.equal(k.storage.remaining(), 100);
  for (let i = 0; i < 100; i++) k.storage.takeSeal();
  assert.throws(() => k.storage.takeSeal(), isCode('store_busy'));
  k.destroy();
  root.destroy();
});

test('CRY-GCM-LIMIT: a reservation that would pass the limit rotates to a fresh generation instead', () => {
  const root = RootKey.generate();
  const k = Keyring.derive(root);
  const limit = 64; // block of 8
  let rotations = 0;
  for (let i = 0; i < 20; i++) if (k.storage.reserve(limit)) rotations++;
  assert.equal(rotations, 2, '8 blocks of 8 per key, so blocks 9 and 17 start new keys');
  assert.deepEqual(k.storage.ids(), [1, 2, 3]);
  for (const id of k.storage.ids()) assert.ok(k.storage.reserved(id) <= limit);
  assert.deepEqual(k.storage.dropOlder(), [1, 2]);
  assert.deepEqual(k.storage.ids(), [3]);
  assert.equal(k.storage.aead(1), undefined);
  k.destroy();
  root.destroy();
});

test('keyring: adopt takes the stored ring (new generations, erasures, this process\'s block)', () => {
  const root = RootKey.generate();
  const live = Keyring.derive(root);
  const stored = Keyring.open(root, live.seal(root));
  stored.storage.addGeneration();
  stored.storage.reserve(1 << 20);
  live.storage.adopt(stored.storage);
  assert.equal(live.storage.current, 2);
  assert.ok(live.storage.remaining() > 0);
  const held = live.storage.aead(1)!;
  stored.storage.dropOlder();
  live.storage.adopt(stored.storage);
  assert.deepEqual(live.storage.ids(), [2]);
  assert.throws(() => held.seal(new Uint8Array(1), AD), (e: unknown) => (e as { code?: string }).code === 'crypto_key_destroyed');
  for (const x of [live, stored, root]) x.destroy();
});
