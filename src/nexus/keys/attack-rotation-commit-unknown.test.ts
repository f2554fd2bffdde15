/**
 * attack-rotation-commit-unknown: a root-key rotation whose store switch commits but whose
 * caller is told "failed, outcome unknown" (PostgreSQL: the COMMIT's answer lost to a reset or
 * a failover). Before the fix the rotation wiped the new root key R' and released the move
 * lock while the store already needed R'; the next sharing move (the operator's retry, a
 * refresh, the refresh schedule) then replaced the Keepers' pending shares of R' — the only
 * copies left — and after a restart nothing opened the store.
 *
 * Now: the switch reads the key check back and, when the switch landed, completes; and a
 * move refuses to store or send anything while the store records another sharing than the
 * one this Nexus holds. Real sqlite file, Keepers as in-memory slots with the real rules.
 */
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../crypto/index.js';
import { custodyOf, Reencryptor, SqliteStore, StoreError } from '../../store/index.js';
import { KEY_CHECK_RECORD } from '../../store/key-check.js';
import type { KeyRecordsUpdate } from '../../store/key-custody.js';
import { tempDir } from '../../../test/helpers/temp.js';
import { bootstrapped, logger, mover, urls } from '../../../test/helpers/fake-keepers.js';
import { MoveError } from './move.js';
import { KeeperSync } from './recovery.js';
import { RootRotation } from './rotation.js';
import { loadSharing } from './sharing.js';
import { KeyState } from './state.js';

type Plan<T> = (found: (key: string) => Uint8Array | null) => KeyRecordsUpdate<T>;
interface KeyRecordsWriter { updateKeyRecords<T>(keys: string[], plan: Plan<T>): Promise<T> }

/**
 * The next transaction that writes a key check (a root switch) commits, then its caller gets
 * `outcome: 'unknown'`; the `failingReads` transactions after it fail (the failover goes on).
 */
function loseNextSwitchAnswer(store: SqliteStore, failingReads = 0): void {
  const s = store as unknown as KeyRecordsWriter;
  const real = s.updateKeyRecords.bind(s);
  let armed = true;
  let failing = 0;
  s.updateKeyRecords = async <T>(keys: string[], plan: Plan<T>): Promise<T> => {
    if (failing > 0) {
      failing--;
      throw new StoreError('store_unavailable', { outcome: 'not_applied' });
    }
    let switching = false;
    const result = await real(keys, (found) => {
      const u = plan(found);
      switching = u.writes.some(([k]) => k === KEY_CHECK_RECORD);
      return u;
    });
    if (switching && armed) {
      armed = false;
      failing = failingReads;
      throw new StoreError('store_unavailable', { outcome: 'unknown' });
    }
    return result;
  };
}

async function persistent() {
  const file = path.join(tempDir('spike-rot-unknown-'), 'spike.db');
  const peers = urls(3);
  const b = await bootstrapped(2, peers, new SqliteStore({ file }));
  for (let i = 0; i < 5; i++) await b.store.putSecret(`app/s${i}`, { v: `value-${i}` });
  return { ...b, file, peers };
}

test('attack-rotation-commit-unknown: a switch that committed but answered "outcome unknown" completes the rotation; a refresh after it and a restart keep the key', async () => {
  const { store, keys, k, file, peers } = await persistent();
  loseNextSwitchAnswer(store);
  const m = mover(store, keys, k);
  const rotation = new RootRotation({ store, keys, logger, reencrypt: new Reencryptor(() => custodyOf(store), { ratePerSecond: 100_000 }), move: m.forRotation() });
  const r = await rotation.rotate();
  assert.equal(r.epoch, 2, 'the rotation completed');
  assert.equal(keys.sharing()?.epoch, 2);
  assert.equal((await loadSharing(store))?.epoch, 2);
  await store.putSecret('app/after', { v: 'written under the new key' });
  assert.equal((await m.move('refresh', { threshold: 2, shares: 3, peers })).epoch, 3, 'the next move runs as usual');
  await rotation.reencrypt.idle();
  keys.clear();
  await store.close();

  // kill -9 and restart: a fresh Nexus rebuilds the key from the Keepers and opens the store.
  const again = new SqliteStore({ file });
  const fresh = new KeyState();
  const sync = new KeeperSync({ peers, threshold: 2, shares: 3, client: k.client(), store: again, keys: fresh, logger, initialBackoffMs: 10, maxBackoffMs: 50, pushIntervalMs: 60_000 });
  sync.start();
  try {
    for (let i = 0; i < 400 && !fresh.isReady(); i++) await new Promise((res) => setTimeout(res, 10));
    assert.ok(fresh.isReady(), 'recovered');
    assert.equal((await again.getSecret('app/s3'))?.values['v'], 'value-3');
    assert.equal((await again.getSecret('app/after'))?.values['v'], 'written under the new key');
  } finally {
    await sync.stop();
    fresh.clear();
    await again.close();
  }
});

test('attack-rotation-commit-unknown: a switch answered "unknown" that did not land still fails, after reading the key check, and the store opens with the old key', async () => {
  const { store, keys } = await persistent();
  const s = store as unknown as KeyRecordsWriter;
  const real = s.updateKeyRecords.bind(s);
  let refused = false;
  let reads = 0;
  s.updateKeyRecords = async <T>(names: string[], plan: Plan<T>): Promise<T> => {
    if (refused) reads++; // the read-back after the lost answer
    return real(names, (found) => {
      const u = plan(found);
      // A switch: abort its transaction (nothing written) and answer as a lost COMMIT would.
      if (u.writes.some(([key]) => key === KEY_CHECK_RECORD)) {
        refused = true;
        throw new StoreError('store_unavailable', { outcome: 'unknown' });
      }
      return u;
    });
  };
  const next = RootKey.generate();
  await assert.rejects(custodyOf(store)!.switchRoot(next, [], { attempts: 3, firstWaitMs: 1 }),
    (e: unknown) => e instanceof StoreError && e.outcome === 'unknown');
  assert.equal(reads, 3, 'the key check was read back before answering');
  assert.equal((await store.getSecret('app/s1'))?.values['v'], 'value-1', 'the old key still opens the store');
  next.destroy();
  keys.clear();
  await store.close();
});

test('attack-rotation-commit-unknown: no move stores or sends anything while the store records another sharing than the one held (move_superseded)', async () => {
  const { store, keys, k, peers } = await persistent();
  // Another holder of the same store moves the sharing on (as the lost-answer switch would have).
  const other = new KeyState();
  other.install(RootKey.fromBytes(keys.root().bytes()), [keys.shareFor(1), keys.shareFor(2)], keys.sharing()!);
  assert.equal((await mover(store, other, k).move('refresh', { threshold: 2, shares: 3, peers })).epoch, 2);
  const pendingBefore = peers.map((u) => k.slot(u).getPending());
  assert.ok(pendingBefore.every((p) => p === undefined));
  const currentBefore = peers.map((u) => Buffer.from(k.slot(u).get()!.value).toString('hex'));

  const stale = mover(store, keys, k); // still holds epoch 1
  await assert.rejects(stale.move('refresh', { threshold: 2, shares: 3, peers }), (e: unknown) => e instanceof MoveError && e.code === 'move_superseded');
  const rotation = new RootRotation({ store, keys, logger, reencrypt: new Reencryptor(() => custodyOf(store), { ratePerSecond: 100_000 }), move: stale.forRotation() });
  await assert.rejects(rotation.rotate(), (e: unknown) => e instanceof MoveError && e.code === 'move_superseded');
  for (const [i, u] of peers.entries()) {
    assert.equal(k.slot(u).getPending(), undefined, `${u}: no pending share was sent`);
    assert.equal(Buffer.from(k.slot(u).get()!.value).toString('hex'), currentBefore[i], `${u}: its share is untouched`);
  }
  assert.equal((await loadSharing(store))?.epoch, 2, 'nothing stored');
  other.clear();
  keys.clear();
  await store.close();
});

test('attack-rotation-commit-unknown: the read-back outlives a failover that goes on (its first reads fail): the rotation still completes, with one root key in the store\'s custody and in the key state', async () => {
  const { store, keys, k } = await persistent();
  loseNextSwitchAnswer(store, 2);
  const rotation = new RootRotation({ store, keys, logger, reencrypt: new Reencryptor(() => custodyOf(store), { ratePerSecond: 100_000 }), move: mover(store, keys, k).forRotation() });
  assert.equal((await rotation.rotate()).epoch, 2);
  assert.equal(keys.sharing()?.epoch, 2);
  await store.putSecret('app/after', { v: 'y' });
  assert.equal((await store.getSecret('app/after'))?.values['v'], 'y');
  const file = store.file;
  await rotation.reencrypt.idle();
  await store.close();
  const again = new SqliteStore({ file });
  await again.unlock(keys.root()); // the key the key state holds is the one the store opens with
  assert.equal((await again.getSecret('app/s2'))?.values['v'], 'value-2');
  keys.clear();
  await again.close();
});
