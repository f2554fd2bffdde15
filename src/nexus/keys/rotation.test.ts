/**
 * Root-key rotation's orchestration (rotation.ts) on a real sqlite file, with a fake sharing
 * move standing in for the Keepers: the order stage → store switch → key state → promote →
 * re-encryption; a stage that fails changes nothing; after the switch the store opens with
 * the new key and its sharing only (the old root key is refused); one rotation at a time;
 * memory / no move refused with stable codes.
 */
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey, splitSecret, wipeShare } from '../../crypto/index.js';
import { createLogger } from '../../lib/index.js';
import { custodyOf, openStore, Reencryptor, SqliteStore, type Store } from '../../store/index.js';
import { tempDir } from '../../../test/helpers/temp.js';
import { KeyState, type SharingInfo } from './state.js';
import { adoptKey, AdoptError } from './sharing.js';
import { RootRotation, RotationError, type RootSharingMove, type StagedSharing } from './rotation.js';

const logger = createLogger({ component: 't', level: 'silent' });
const tempFile = (): string => path.join(tempDir('spike-rotation-'), 'spike.db');

function sharingOf(root: RootKey, epoch: number): StagedSharing {
  const split = splitSecret(root, 2, 3);
  split.shares.slice(2).forEach(wipeShare);
  const sharing: SharingInfo = { epoch, threshold: 2, shares: 3, commitments: split.commitments };
  return { sharing, basis: split.shares.slice(0, 2) };
}

class FakeMove implements RootSharingMove {
  readonly calls: string[] = [];
  staged: { root: Uint8Array; sharing: SharingInfo } | undefined;
  failStage = false;
  constructor(readonly epoch: number) {}
  async stage(root: RootKey): Promise<StagedSharing> {
    this.calls.push('stage');
    if (this.failStage) throw new Error('keeper 2 did not acknowledge');
    const s = sharingOf(root, this.epoch);
    this.staged = { root: root.bytes(), sharing: s.sharing };
    return s;
  }
  async promote(): Promise<void> {
    this.calls.push('promote');
  }
}

async function started(store: Store = new SqliteStore({ file: tempFile() })) {
  const keys = new KeyState();
  const root = RootKey.generate();
  const old = root.bytes();
  const first = sharingOf(root, 1);
  await adoptKey(store, keys, root, first.basis, first.sharing);
  const reencrypt = new Reencryptor(() => custodyOf(store), { ratePerSecond: 100_000 });
  return { store, keys, old, firstSharing: first.sharing, reencrypt };
}

test('ROT-10: stage → switch → install → promote → re-encrypt; the store then opens with the new key only', async () => {
  const { store, keys, old, firstSharing, reencrypt } = await started();
  for (let i = 0; i < 20; i++) await store.putSecret(`r/s${i}`, { k: String(i) });
  const move = new FakeMove(2);
  const rotation = new RootRotation({ store, keys, logger, reencrypt, move });
  const r = await rotation.rotate();
  assert.deepEqual(r, { epoch: 2, storageKeyId: 2, cipherVersion: 2 });
  assert.deepEqual(move.calls, ['stage', 'promote']);
  assert.deepEqual(Buffer.from(keys.root().bytes()), Buffer.from(move.staged!.root), 'the key state holds the staged root key');
  assert.equal(keys.sharing()?.epoch, 2);
  await reencrypt.idle();
  assert.deepEqual(custodyOf(store)!.keyring.storage.ids(), [2]);
  for (let i = 0; i < 20; i++) assert.equal((await store.getSecret(`r/s${i}`))?.values['k'], String(i));
  const file = (store as SqliteStore).file;
  await store.close();

  // Restart: the old root key (and its sharing) are refused, the new one is adopted.
  const oldRoot = RootKey.fromBytes(old);
  const again = new SqliteStore({ file });
  await assert.rejects(adoptKey(again, new KeyState(), oldRoot, sharingOf(oldRoot, 1).basis, firstSharing),
    (e: unknown) => e instanceof AdoptError && e.code === 'key_check_failed');
  const newRoot = RootKey.fromBytes(move.staged!.root);
  const staged = sharingOf(newRoot, 2);
  // The stored sharing is the staged one (same commitments), not a new one.
  await assert.rejects(adoptKey(again, new KeyState(), RootKey.fromBytes(move.staged!.root), staged.basis, staged.sharing),
    (e: unknown) => e instanceof AdoptError && e.code === 'sharing_mismatch');
  const k2 = new KeyState();
  await adoptKey(again, k2, newRoot, staged.basis.slice(0, 2), move.staged!.sharing);
  assert.equal((await again.getSecret('r/s7'))?.values['k'], '7');
  await again.close();
  oldRoot.destroy();
  keys.clear();
  k2.clear();
});

test('ROT-13: step points (test fault injection) are awaited: after-root-switch with the old key still in memory, after-promote before re-encryption', async () => {
  const { store, keys, old, reencrypt } = await started();
  const move = new FakeMove(2);
  const rotation = new RootRotation({
    store, keys, logger, reencrypt, move,
    onStep: async (step) => {
      move.calls.push(step);
      if (step === 'after-root-switch') assert.deepEqual(Buffer.from(keys.root().bytes()), Buffer.from(old), 'the old key is still installed');
    },
  });
  await rotation.rotate();
  assert.deepEqual(move.calls, ['stage', 'after-root-switch', 'promote', 'after-promote']);
  await reencrypt.idle();
  await store.close();
  keys.clear();
});

test('ROT-11: a stage that fails (a Keeper did not acknowledge) changes nothing', async () => {
  const { store, keys, old, reencrypt } = await started();
  await store.putSecret('a/b', { k: '1' });
  const move = new FakeMove(2);
  move.failStage = true;
  const rotation = new RootRotation({ store, keys, logger, reencrypt, move });
  await assert.rejects(rotation.rotate(), /did not acknowledge/);
  assert.deepEqual(Buffer.from(keys.root().bytes()), Buffer.from(old));
  assert.equal(keys.sharing()?.epoch, 1);
  assert.deepEqual(custodyOf(store)!.keyring.storage.ids(), [1]);
  assert.equal((await store.getSecret('a/b'))?.values['k'], '1');
  await store.close();
  keys.clear();
});

test('ROT-12: one rotation at a time; memory and no sharing move are refused with stable codes', async () => {
  const { store, keys, reencrypt } = await started();
  const move = new FakeMove(2);
  const rotation = new RootRotation({ store, keys, logger, reencrypt, move });
  const isCode = (code: string) => (e: unknown): boolean => e instanceof RotationError && e.code === code;
  const first = rotation.rotate();
  await assert.rejects(rotation.rotate(), isCode('rotation_in_progress'));
  await first;
  await reencrypt.idle();
  await assert.rejects(new RootRotation({ store, keys, logger, reencrypt }).rotate(), isCode('rotation_unavailable'));
  await store.close();
  keys.clear();

  const mem = await openStore({ kind: 'memory' });
  const mk = new KeyState();
  mk.installEphemeral();
  await assert.rejects(new RootRotation({ store: mem, keys: mk, logger, reencrypt, move }).rotate(), isCode('rotation_not_ready'));
  mk.clear();
});
