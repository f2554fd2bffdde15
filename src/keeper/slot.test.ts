import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey, splitSecret } from '../crypto/index.js';
import { MAX_SHARE_EPOCH } from '../protocol/index.js';
import { BOOTSTRAP_EPOCH, KeeperSlotError, ShareSlot } from './slot.js';

const v = (b: number): Uint8Array => new Uint8Array(32).fill(b);
const hex = (u: Uint8Array | undefined): string => (u ? Buffer.from(u).toString('hex') : 'none');
const refused = (code: string, status: number) => (e: unknown): boolean =>
  e instanceof KeeperSlotError && e.code === code && e.status === status;

function sharing(): ReturnType<typeof splitSecret> {
  const root = RootKey.generate();
  try {
    return splitSecret(root, 2, 3);
  } finally {
    root.destroy();
  }
}

test('KPR-08/CFG-05: once Nexus confirmed a share, Bootstrap cannot replace it; the identical share is acknowledged', () => {
  const slot = new ShareSlot();
  assert.equal(slot.contribute('bootstrap', { value: v(1), epoch: 1 }), 'stored');
  assert.equal(slot.contribute('bootstrap', { value: v(2), epoch: 1 }), 'stored', 'unconfirmed: a rerun may replace');
  assert.equal(slot.contribute('nexus', { value: v(2), epoch: 1 }), 'unchanged');
  assert.equal(slot.contribute('bootstrap', { value: v(2), epoch: 1 }), 'unchanged', 'identical re-send acknowledged');
  assert.equal(slot.contribute('bootstrap', { value: v(2) }), 'unchanged', 'a SPIKE sender (no epoch) means epoch 1');
  assert.throws(() => slot.contribute('bootstrap', { value: v(3), epoch: 1 }), refused('keeper_share_conflict', 409));
  assert.throws(() => slot.contribute('bootstrap', { value: v(3) }), refused('keeper_share_conflict', 409));
  assert.throws(() => slot.contribute('nexus', { value: v(4), epoch: 0 }), refused('keeper_epoch_out_of_range', 400));
  assert.equal(hex(slot.get()?.value), hex(v(2)));
  assert.equal(slot.contribute('nexus', { value: v(5), epoch: 2 }), 'stored', 'Nexus may move the epoch');
});

test('ATTACK keeper epoch poisoning: Bootstrap may send only the first epoch, and Nexus always wins over what Bootstrap put in a restarted Keeper', () => {
  const { shares, commitments } = sharing();
  const slot = new ShareSlot(); // a Keeper just restarted: empty, no memory of the confirmed sharing
  for (const epoch of [Number.MAX_SAFE_INTEGER, MAX_SHARE_EPOCH, BOOTSTRAP_EPOCH + 1, 0, -1, 1.5, Number.NaN]) {
    assert.throws(() => slot.contribute('bootstrap', { value: v(9), id: 1, epoch }), refused('keeper_epoch_out_of_range', 400), `bootstrap epoch ${epoch}`);
    assert.equal(slot.has(), false, 'a refused share changes nothing');
  }
  // What Bootstrap can still do to an empty Keeper: put a junk share at epoch 1 (the rerun ability).
  assert.equal(slot.contribute('bootstrap', { value: v(9), id: 1, epoch: BOOTSTRAP_EPOCH }), 'stored');
  // Nexus's verified share replaces it.
  assert.equal(slot.contribute('nexus', { value: shares[0]!.value, id: 1, epoch: 1, commitments }), 'stored');
  assert.equal(hex(slot.get()?.value), hex(shares[0]!.value));
  assert.equal(slot.get()?.epoch, 1);
  // Confirmed now: Bootstrap is ignored at any epoch.
  assert.throws(() => slot.contribute('bootstrap', { value: v(9), id: 1, epoch: 1 }), refused('keeper_share_conflict', 409));
  assert.throws(() => slot.contribute('bootstrap', { value: v(9), id: 1, epoch: Number.MAX_SAFE_INTEGER }), refused('keeper_epoch_out_of_range', 400));
  assert.equal(slot.contribute('bootstrap', { value: shares[0]!.value, id: 1, epoch: 1 }), 'unchanged');
  assert.equal(hex(slot.get()?.value), hex(shares[0]!.value));
});

test('Nexus: a share that does not verify against the commitments it sent is refused and changes nothing', () => {
  const { shares, commitments } = sharing();
  const slot = new ShareSlot();
  slot.contribute('bootstrap', { value: v(9), epoch: 1 });
  assert.throws(() => slot.contribute('nexus', { value: shares[1]!.value, id: 1, epoch: 1, commitments }), refused('keeper_share_unverified', 400));
  assert.equal(hex(slot.get()?.value), hex(v(9)));
});

test('Nexus epochs: a Nexus-confirmed epoch is never moved backwards; the range is bounded', () => {
  const slot = new ShareSlot();
  assert.equal(slot.contribute('nexus', { value: v(1), epoch: 5 }), 'stored');
  assert.throws(() => slot.contribute('nexus', { value: v(2), epoch: 4 }), refused('keeper_stale_epoch', 409));
  assert.equal(slot.contribute('nexus', { value: v(3), epoch: 5 }), 'stored', 'Nexus is the authority within its epoch');
  assert.equal(slot.contribute('nexus', { value: v(4), epoch: MAX_SHARE_EPOCH }), 'stored');
  assert.throws(() => slot.contribute('nexus', { value: v(5), epoch: MAX_SHARE_EPOCH + 1 }), refused('keeper_epoch_out_of_range', 400));
  assert.equal(slot.get()?.epoch, MAX_SHARE_EPOCH);
  slot.clear();
  assert.equal(slot.has(), false);
});
