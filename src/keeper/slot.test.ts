import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey, splitSecret, type Commitments } from '../crypto/index.js';
import { MAX_SHARE_EPOCH } from '../protocol/index.js';
import { BOOTSTRAP_EPOCH, KeeperSlotError, ShareSlot, STAGED_TTL_MS } from './slot.js';

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

// Sharing moves (share refresh, Keeper set change): one pending share beside the current one.

function confirmedAt(epoch: number, b = 1): ShareSlot {
  const slot = new ShareSlot();
  slot.contribute('nexus', { value: v(b), id: 1, epoch });
  return slot;
}

/** A pending share as Nexus sends it: share id 1 of a fresh sharing, with that sharing's commitments. */
function pend(epoch: number): { value: Uint8Array; id: number; epoch: number; commitments: Commitments; pending: true } {
  const { shares, commitments } = sharing();
  return { value: shares[0]!.value, id: 1, epoch, commitments, pending: true };
}

test('pending: Nexus stores a pending share beside the current one; the shard view shows both; a re-push of the current epoch keeps it', () => {
  const slot = confirmedAt(1);
  const p = pend(2);
  assert.equal(slot.contribute('nexus', p), 'stored');
  assert.equal(hex(slot.get()?.value), hex(v(1)));
  assert.equal(slot.get()?.epoch, 1);
  assert.equal(hex(slot.getPending()?.value), hex(p.value));
  assert.equal(slot.getPending()?.epoch, 2);
  assert.equal(slot.contribute('nexus', p), 'unchanged', 'identical pending re-send');
  assert.equal(slot.contribute('nexus', { value: v(1), id: 1, epoch: 1 }), 'unchanged', 'periodic re-push of the current epoch');
  assert.equal(hex(slot.getPending()?.value), hex(p.value), 'the re-push did not undo the move');
});

test('pending: the commit (non-pending, pending epoch, identical value) promotes it and drops the old epoch; the old epoch is then stale', () => {
  const slot = confirmedAt(1);
  const p = pend(2);
  slot.contribute('nexus', p);
  const old = slot.get();
  assert.equal(slot.contribute('nexus', { value: p.value, id: 1, epoch: 2 }), 'promoted');
  assert.equal(hex(slot.get()?.value), hex(p.value));
  assert.equal(slot.get()?.epoch, 2);
  assert.equal(slot.get()?.commitments, p.commitments, 'the pending share\'s commitments stay with it');
  assert.equal(slot.getPending(), undefined);
  assert.throws(() => slot.contribute('nexus', { value: v(1), id: 1, epoch: 1 }), refused('keeper_stale_epoch', 409), 'no going backwards');
  assert.throws(() => slot.contribute('bootstrap', { value: v(1), id: 1, epoch: 1 }), refused('keeper_share_conflict', 409));
  old?.value.fill(0);
});

test('pending: a non-pending share from Nexus of a higher epoch (or the pending epoch with another value) replaces everything', () => {
  const a = confirmedAt(1);
  a.contribute('nexus', pend(2));
  assert.equal(a.contribute('nexus', { value: v(8), id: 1, epoch: 3 }), 'stored');
  assert.deepEqual([a.get()?.epoch, hex(a.get()?.value), a.getPending()], [3, hex(v(8)), undefined]);
  const b = confirmedAt(1);
  b.contribute('nexus', pend(2));
  assert.equal(b.contribute('nexus', { value: v(9), id: 1, epoch: 2 }), 'stored');
  assert.deepEqual([b.get()?.epoch, hex(b.get()?.value), b.getPending()], [2, hex(v(9)), undefined]);
});

test('pending: refused from Bootstrap, without a current share, or at or below the current epoch; a newer pending replaces an older one', () => {
  const empty = new ShareSlot();
  assert.throws(() => empty.contribute('nexus', pend(2)), refused('keeper_no_current', 409));
  assert.equal(empty.has(), false);
  const slot = confirmedAt(2);
  assert.throws(() => slot.contribute('bootstrap', pend(1)), refused('keeper_pending_refused', 400));
  assert.throws(() => slot.contribute('nexus', pend(2)), refused('keeper_stale_epoch', 409));
  assert.throws(() => slot.contribute('nexus', pend(1)), refused('keeper_stale_epoch', 409));
  assert.equal(slot.getPending(), undefined);
  slot.contribute('nexus', pend(3));
  const rerun = pend(4);
  assert.equal(slot.contribute('nexus', rerun), 'stored', 'a rerun move replaces the abandoned pending share');
  assert.deepEqual([slot.getPending()?.epoch, hex(slot.getPending()?.value)], [4, hex(rerun.value)]);
  // A Bootstrap resend of something else never touches either share.
  assert.throws(() => slot.contribute('bootstrap', { value: v(5), id: 1, epoch: 1 }), refused('keeper_share_conflict', 409));
  assert.deepEqual([slot.get()?.epoch, slot.getPending()?.epoch], [2, 4]);
});

test('KPR-PENDING-COMMIT: a pending share without Feldman commitments, or without a share id, is refused (keeper_pending_unverifiable, 400); nothing changes', () => {
  const slot = confirmedAt(1);
  const p = pend(2);
  assert.throws(() => slot.contribute('nexus', { value: p.value, id: 1, epoch: 2, pending: true }), refused('keeper_pending_unverifiable', 400));
  assert.throws(() => slot.contribute('nexus', { value: p.value, epoch: 2, commitments: p.commitments, pending: true }), refused('keeper_pending_unverifiable', 400));
  assert.equal(slot.getPending(), undefined);
  assert.deepEqual([slot.get()?.epoch, hex(slot.get()?.value)], [1, hex(v(1))], 'the current share is untouched');
  assert.equal(slot.contribute('nexus', p), 'stored', 'the same share with its commitments and id is taken');
});

test('pending: a pending share that does not verify against its commitments is refused; clear() drops both shares', () => {
  const { shares, commitments } = sharing();
  const slot = confirmedAt(1);
  assert.throws(() => slot.contribute('nexus', { value: shares[1]!.value, id: 1, epoch: 2, commitments, pending: true }), refused('keeper_share_unverified', 400));
  assert.equal(slot.getPending(), undefined);
  slot.contribute('nexus', { value: shares[0]!.value, id: 1, epoch: 2, commitments, pending: true });
  assert.equal(slot.getPending()?.commitments, commitments);
  slot.clear();
  assert.deepEqual([slot.has(), slot.getPending()], [false, undefined]);
});

// Atomic seeding (CFG-03): Bootstrap stages, then commits the identical share unstaged.

test('CFG-03: a staged Bootstrap share is never served until the identical share commits it', () => {
  const slot = new ShareSlot();
  assert.equal(slot.contribute('bootstrap', { value: v(1), id: 1, epoch: 1, staged: true }), 'staged');
  assert.equal(slot.has(), false, 'staged: nothing served');
  assert.equal(slot.get(), undefined);
  assert.equal(slot.contribute('bootstrap', { value: v(1), id: 1, epoch: 1, staged: true }), 'unchanged', 'a retried stage');
  assert.equal(slot.contribute('bootstrap', { value: v(1), id: 1, epoch: 1 }), 'committed');
  assert.equal(hex(slot.get()?.value), hex(v(1)));
  assert.equal(slot.contribute('bootstrap', { value: v(1), id: 1, epoch: 1 }), 'unchanged', 'a retried commit');
});

test('CFG-03: a new run withdraws an unconfirmed share of an earlier run; Nexus always wins over a staged share', () => {
  const slot = new ShareSlot();
  slot.contribute('bootstrap', { value: v(1), epoch: 1, staged: true });
  slot.contribute('bootstrap', { value: v(1), epoch: 1 });
  // A rerun stages another share: the earlier, unconfirmed one is no longer served.
  assert.equal(slot.contribute('bootstrap', { value: v(2), epoch: 1, staged: true }), 'staged');
  assert.equal(slot.has(), false);
  // Another run's commit while this one is staged is refused (two runs at once never mix
  // their sharings); this run's own commit still goes through.
  assert.throws(() => slot.contribute('bootstrap', { value: v(3), epoch: 1 }), refused('keeper_share_conflict', 409));
  assert.equal(slot.has(), false);
  assert.equal(slot.contribute('bootstrap', { value: v(2), epoch: 1 }), 'committed');
  slot.contribute('bootstrap', { value: v(4), epoch: 1, staged: true });
  assert.equal(slot.contribute('nexus', { value: v(5), epoch: 1 }), 'stored');
  // Nexus dropped the staged share: its commit is now just another Bootstrap share, refused.
  assert.throws(() => slot.contribute('bootstrap', { value: v(4), epoch: 1 }), refused('keeper_share_conflict', 409));
  assert.equal(hex(slot.get()?.value), hex(v(5)));
});

test('CFG-03 with KPR-08/CFG-05: after Nexus confirmed, a stage of the identical share is acknowledged, any other refused; only Bootstrap stages', () => {
  const slot = new ShareSlot();
  slot.contribute('nexus', { value: v(1), epoch: 1 });
  assert.equal(slot.contribute('bootstrap', { value: v(1), epoch: 1, staged: true }), 'unchanged');
  assert.throws(() => slot.contribute('bootstrap', { value: v(2), epoch: 1, staged: true }), refused('keeper_share_conflict', 409));
  assert.equal(slot.contribute('bootstrap', { value: v(1), epoch: 1 }), 'unchanged');
  assert.throws(() => slot.contribute('nexus', { value: v(2), epoch: 1, staged: true }), refused('keeper_stage_refused', 400));
  assert.throws(() => slot.contribute('bootstrap', { value: v(2), epoch: 2, staged: true }), refused('keeper_epoch_out_of_range', 400));
  assert.equal(hex(slot.get()?.value), hex(v(1)));
});

test('CFG-03: nothing new is staged while Nexus moves the sharing (a pending share is held here): 409, the held share stays', () => {
  const slot = new ShareSlot();
  slot.contribute('bootstrap', { value: v(1), epoch: 1 });
  slot.contribute('nexus', pend(2));
  assert.throws(() => slot.contribute('bootstrap', { value: v(9), epoch: 1, staged: true }), refused('keeper_share_conflict', 409));
  assert.equal(hex(slot.get()?.value), hex(v(1)));
  assert.equal(slot.contribute('bootstrap', { value: v(1), epoch: 1, staged: true }), 'unchanged', 'the identical share is still acknowledged');
});

/** A slot on a hand-driven clock; the expiry timers it arms run only when the test fires them. */
function clocked(): { slot: ShareSlot; advance: (ms: number) => void; fire: () => void; fireAll: () => void; armed: () => number; expired: () => number } {
  let now = 1_000_000;
  let expired = 0;
  const timers: { at: number; fn: () => void; live: boolean }[] = [];
  const slot = new ShareSlot({
    now: () => now,
    schedule: (fn, ms) => {
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return { cancel: () => { t.live = false; } };
    },
    onStagedExpired: () => { expired++; },
  });
  return {
    slot,
    advance: (ms) => { now += ms; },
    /** Runs every live timer that is due. */
    fire: () => { for (const t of timers.splice(0)) if (t.live && t.at <= now) t.fn(); else if (t.live) timers.push(t); },
    /** Runs every live timer, due or not (a timer that fires early). */
    fireAll: () => { for (const t of timers.splice(0)) if (t.live) t.fn(); },
    armed: () => timers.filter((t) => t.live).length,
    expired: () => expired,
  };
}

test('CFG-03: a staged share left by a failed run (a Keeper unreachable at the stage) is zeroed once its TTL passes, by its timer, with nothing touching the slot', () => {
  const c = clocked();
  const value = v(7);
  c.slot.contribute('bootstrap', { value, id: 1, epoch: 1, staged: true });
  assert.equal(c.slot.hasStaged(), true);
  assert.equal(c.armed(), 1);
  c.advance(STAGED_TTL_MS - 1);
  c.fire();
  assert.equal(c.slot.hasStaged(), true, 'kept until the TTL');
  c.advance(1);
  c.fire();
  assert.equal(c.expired(), 1);
  assert.equal(c.armed(), 0);
  assert.equal(c.slot.hasStaged(), false, 'zeroed and dropped');
  assert.equal(c.slot.has(), false);
  // A late commit of that run finds nothing staged: an unstaged Bootstrap share (the rules without staging).
  assert.equal(c.slot.contribute('bootstrap', { value, id: 1, epoch: 1 }), 'stored');
});

test('CFG-03: the expiry is checked before every share taken too (a late timer changes nothing); an early timer re-arms for the rest; a commit in time cancels it', () => {
  const c = clocked();
  c.slot.contribute('bootstrap', { value: v(3), id: 1, epoch: 1, staged: true });
  c.advance(STAGED_TTL_MS - 10);
  assert.throws(() => c.slot.contribute('bootstrap', { value: v(4), id: 1, epoch: 1 }), refused('keeper_share_conflict', 409), 'still staged: another run refused');
  // The timer fires 10 ms early (granularity): nothing dropped, re-armed for the remaining 10 ms.
  c.fireAll();
  assert.equal(c.slot.hasStaged(), true);
  assert.equal(c.armed(), 1);
  c.advance(10);
  // No timer run: contribute() itself sees the expiry, so another run's share is no longer a conflict.
  assert.equal(c.slot.contribute('bootstrap', { value: v(4), id: 1, epoch: 1 }), 'stored');
  assert.equal(c.expired(), 1);
  assert.equal(c.armed(), 0, 'the timer was cancelled with the share');

  const d = clocked();
  d.slot.contribute('bootstrap', { value: v(5), id: 1, epoch: 1, staged: true });
  d.advance(STAGED_TTL_MS - 1);
  assert.equal(d.slot.contribute('bootstrap', { value: v(5), id: 1, epoch: 1 }), 'committed');
  assert.equal(d.armed(), 0);
  d.advance(STAGED_TTL_MS);
  d.fireAll();
  assert.equal(hex(d.slot.get()?.value), hex(v(5)), 'a committed share does not expire');
  assert.equal(d.expired(), 0);
});
