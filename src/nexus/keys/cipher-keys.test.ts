/**
 * Cipher key versions (cipher-keys.ts): version 1 is `cipher/v1` of the first root key; after
 * a root switch encrypt uses version 2 and version 1 still opens; every encryption is
 * counted in the keyring; with a memory store there is version 1 only.
 */
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { derivePurposeKey, RootKey } from '../../crypto/index.js';
import { custodyOf, openStore, SqliteStore } from '../../store/index.js';
import { tempDir } from '../../../test/helpers/temp.js';
import { CipherKeys } from './cipher-keys.js';
import { KeyState } from './state.js';

test('CIP-ROT-01: versions follow the keyring; older versions stay readable; encryptions are counted', async () => {
  const store = new SqliteStore({ file: path.join(tempDir('spike-cipherkeys-'), 'spike.db') });
  const root = RootKey.generate();
  const v1 = derivePurposeKey(root, 'cipher/v1');
  await store.unlock(root);
  const keys = new KeyState();
  keys.installEphemeral(); // any installed key: the versions come from the store's keyring
  const ck = new CipherKeys(keys, store);
  const a = await ck.forEncrypt();
  assert.equal(a.version, 1);
  assert.deepEqual(a.key, v1);
  assert.ok(custodyOf(store)!.keyring.cipher.reserved(1) >= 1, 'the encryption was counted (reserved ahead)');
  const next = RootKey.generate();
  await custodyOf(store)!.switchRoot(next);
  const b = await ck.forEncrypt();
  assert.equal(b.version, 2);
  assert.notDeepEqual(b.key, v1);
  assert.deepEqual(ck.forDecrypt(1), v1);
  assert.deepEqual(ck.forDecrypt(2), b.key);
  assert.equal(ck.forDecrypt(3), undefined);
  assert.equal(ck.current(), 2);
  await store.close();
  keys.clear();
  for (const r of [root, next]) r.destroy();
});

test('CIP-ROT-02: memory store: version 1 only, derived from the key in memory', async () => {
  const store = await openStore({ kind: 'memory' });
  const keys = new KeyState();
  keys.installEphemeral();
  const ck = new CipherKeys(keys, store);
  const a = await ck.forEncrypt();
  assert.equal(a.version, 1);
  assert.deepEqual(a.key, derivePurposeKey(keys.root(), 'cipher/v1'));
  assert.equal(ck.forDecrypt(2), undefined);
  keys.clear();
});
