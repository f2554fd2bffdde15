/**
 * `adoptKey` (Keeper recovery and operator restore) on real sqlite files: the codes callers
 * see stay what they were — `key_check_failed` for a key that does not open the key-check
 * record, `sharing_mismatch` / `sharing_record_malformed` for the stored sharing record,
 * `store_wrong_key` for a database that holds only the old store check — and a database
 * written before the single key check (test/helpers/legacy-store.ts) is adopted with its
 * root key and shares.
 */
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey, splitSecret } from '../../crypto/index.js';
import { SqliteStore, StoreError } from '../../store/index.js';
import { KeyState, type SharingInfo } from './state.js';
import { AdoptError, adoptKey, decodeSharing, encodeSharing, isInitialized, loadSharing, SHARING_RECORD, trustedSharing } from './sharing.js';
import { LEGACY_CONTENT, legacyBasis, legacyRoot, writeLegacySqliteFile } from '../../../test/helpers/legacy-store.js';
import { tempDir } from '../../../test/helpers/temp.js';

const tempFile = (): string => path.join(tempDir('spike-sharing-'), 'spike.db');

async function legacyStore(omit: readonly string[] = []): Promise<SqliteStore> {
  const file = tempFile();
  await writeLegacySqliteFile(file, omit);
  return new SqliteStore({ file });
}

function freshSharing(root: RootKey, epoch = 1): { sharing: SharingInfo; basis: ReturnType<typeof splitSecret>['shares'] } {
  const split = splitSecret(root, 2, 3);
  return { sharing: { epoch, threshold: 2, shares: 3, commitments: split.commitments }, basis: split.shares.slice(0, 2) };
}

const adoptErr = (code: string) => (e: unknown): boolean => e instanceof AdoptError && e.code === code;

test('first start: adoptKey writes the sharing and key-check records, unlocks and installs; the same key adopts again later', async () => {
  const file = tempFile();
  const root = RootKey.generate();
  const { sharing, basis } = freshSharing(root);
  const store = new SqliteStore({ file });
  const keys = new KeyState();
  assert.equal(await isInitialized(store), false);
  await adoptKey(store, keys, root, basis, sharing);
  assert.equal(keys.isReady(), true);
  assert.equal(store.isUnlocked(), true);
  assert.equal(await isInitialized(store), true);
  assert.deepEqual(await store.getSystem(SHARING_RECORD), new Uint8Array(encodeSharing(sharing, root)));
  await store.close();

  const again = new SqliteStore({ file });
  const keys2 = new KeyState();
  const copy = RootKey.fromBytes(root.bytes());
  try {
    await adoptKey(again, keys2, copy, basis, sharing);
    assert.equal(keys2.isReady(), true);
  } finally {
    await again.close();
  }
});

test('a database written before the single key check: adopted with its root key and shares; its secrets read back', async () => {
  const store = await legacyStore();
  const sharing = await loadSharing(store);
  assert.ok(sharing);
  const keys = new KeyState();
  try {
    await assert.rejects(adoptKey(store, keys, RootKey.generate(), legacyBasis(), sharing), adoptErr('key_check_failed'));
    assert.equal(store.isUnlocked(), false);
    assert.equal(keys.isReady(), false);
    await adoptKey(store, keys, legacyRoot(), legacyBasis(), sharing, { trust: { configuredPeers: [], acceptUntagged: true } });
    assert.equal(keys.isReady(), true);
    assert.equal(keys.sharing()?.epoch, sharing.epoch);
    assert.deepEqual({ ...(await store.getSecret(LEGACY_CONTENT.path))?.values }, LEGACY_CONTENT.current.values);
  } finally {
    await store.close();
  }
});

test('another sharing (other commitments) → sharing_mismatch; a malformed stored record → sharing_record_malformed; nothing installed', async () => {
  const root = RootKey.generate();
  const first = freshSharing(root);
  const store = new SqliteStore({ file: tempFile() });
  try {
    await adoptKey(store, new KeyState(), root, first.basis, first.sharing);
  } finally {
    await store.close();
  }
  const file = store.file;
  const other = freshSharing(root, 2);
  const s2 = new SqliteStore({ file });
  const keys = new KeyState();
  try {
    await assert.rejects(adoptKey(s2, keys, root, other.basis, other.sharing), adoptErr('sharing_mismatch'));
    assert.equal(s2.isUnlocked(), false);
    await s2.putSystem(SHARING_RECORD, new TextEncoder().encode('{"v":1}'));
    await assert.rejects(adoptKey(s2, keys, root, first.basis, first.sharing), adoptErr('sharing_record_malformed'));
    assert.equal(s2.isUnlocked(), false);
    assert.equal(keys.isReady(), false);
  } finally {
    await s2.close();
    root.destroy();
  }
});

test('a database holding only the old store check: a wrong key → store_wrong_key (as before), nothing written', async () => {
  const store = await legacyStore(['kcv', SHARING_RECORD]);
  const wrong = RootKey.generate();
  const { sharing, basis } = freshSharing(wrong);
  try {
    await assert.rejects(adoptKey(store, new KeyState(), wrong, basis, sharing),
      (e: unknown) => e instanceof StoreError && e.code === 'store_wrong_key');
    assert.equal(await isInitialized(store), false);
    assert.equal(await store.getSystem(SHARING_RECORD), null);
  } finally {
    await store.close();
    wrong.destroy();
  }
});

test('the tag covers the record kind: a pending record copied into the current slot (or back) does not verify', () => {
  const root = RootKey.generate();
  const { sharing } = freshSharing(root);
  const withPeers = { ...sharing, peers: ['https://k1', 'https://k2', 'https://k3'] };
  const trust = { configuredPeers: [] };
  const pending = encodeSharing(withPeers, root, 'pending');
  assert.equal(trustedSharing(decodeSharing(pending, 'pending'), root, trust), 'yes');
  assert.equal(trustedSharing(decodeSharing(pending), root, trust), 'no', 'read as the current record');
  assert.equal(trustedSharing(decodeSharing(encodeSharing(withPeers, root), 'pending'), root, trust), 'no', 'a current record read as pending');
  assert.equal(trustedSharing(decodeSharing(encodeSharing(withPeers, root)), RootKey.generate(), trust), 'no', 'another root key');
});
