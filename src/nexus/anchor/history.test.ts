/**
 * The anchor records bind the store's history (witness.ts `bind`, sealer.ts, startup-check.ts):
 * every record carries its own nonce, and the store keeps recent records by counter, so an
 * older copy put back and then written past a counter by processes that had not seen the newer
 * state is told from a store that moved on, although its counters alone pass every check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey, type Commitments } from '../../crypto/index.js';
import { AnchorKey } from './mac.js';
import { anchorStatus as status, guardFixture, sleep, until } from '../../../test/helpers/rollback-guard.js';

const cause = (f: ReturnType<typeof guardFixture>): string | undefined => (f.events.at(-1)?.[1] as { cause?: string } | undefined)?.cause;

/** An older copy (at `at`) put back, then written on by processes unaware of this one's writes, up to `to`. */
function copyWrittenPast(f: ReturnType<typeof guardFixture>, at: bigint, to: bigint): void {
  f.replace(f.seal(at));
  for (let c = at + 1n; c <= to; c++) f.replace(f.sealFresh(c));
}

test('attack-rollback-race-written-past: this process\'s last records never reached the Keepers; a copy put back and written past them by other processes is refused at the next look', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n], undefined, [], undefined, undefined, { recheckMs: 60_000 });
  try {
    await f.guard.start();
    f.write();
    f.write(); // this process committed 11 and 12; its push has not happened yet
    copyWrittenPast(f, 10n, 14n);
    await f.guard.lookNow();
    await until(() => f.guard.state === 'refused', 'refused');
    assert.equal(f.events.at(-1)?.[0], 'rollback.detected');
    assert.equal(cause(f), 'diverged');
  } finally {
    await f.done();
  }
});

test('attack-rollback-race-written-past: found at this process\'s next write too (the write itself goes through; the history is checked right after)', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n], undefined, [], undefined, undefined, { recheckMs: 60_000 });
  try {
    await f.guard.start();
    f.write();
    f.write();
    copyWrittenPast(f, 10n, 14n);
    f.write();
    await until(() => f.guard.state === 'refused', 'refused');
    assert.equal(cause(f), 'diverged');
  } finally {
    await f.done();
  }
});

test('anchor history: the same counter with another record is another history, found at once', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n], undefined, [], undefined, undefined, { recheckMs: 60_000 });
  try {
    await f.guard.start();
    f.write(); // 11
    copyWrittenPast(f, 10n, 11n);
    assert.throws(() => f.write(), (e: unknown) => (e as { code?: string }).code === 'store_busy');
    assert.equal(f.guard.state, 'refused');
    assert.equal(cause(f), 'diverged');
  } finally {
    await f.done();
  }
});

test('attack-rollback-keeper-record-erased: a process on a copy written past the Keepers\' record does not push over it; it refuses', async () => {
  // This process plays the unaware one: it serves the copy (10) and writes 11..14.
  const f = guardFixture(10n, [10n, 10n, 10n], undefined, [], undefined, undefined, { recheckMs: 60_000 });
  try {
    await f.guard.start();
    await until(() => f.guard.pusher?.latest() !== undefined, 'the first push round');
    for (let i = 0; i < 4; i++) f.write();
    // Another process had written 11 and 12 on the original store and pushed 12.
    const theirs = f.sealFresh(12n);
    f.keepersHold([theirs, theirs, theirs]);
    await f.guard.pusher!.pushAll();
    await until(() => f.guard.state === 'refused', 'refused');
    assert.equal(cause(f), 'diverged');
    assert.ok(f.keepers().every((c) => c !== 14n), 'the record that shows it was not replaced by the copy\'s anchor');
  } finally {
    await f.done();
  }
});

test('attack-rollback-keeper-record-erased: the Keeper probe\'s status binds the Keeper\'s record too', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n], undefined, [], undefined, undefined, { recheckMs: 60_000 });
  try {
    await f.guard.start();
    for (let i = 0; i < 4; i++) f.write();
    f.guard.keeperStatus(2, status(f.sealFresh(12n)));
    await until(() => f.guard.state === 'refused', 'refused');
    assert.equal(cause(f), 'diverged');
  } finally {
    await f.done();
  }
});

test('attack-rollback-diverged-at-startup: Keepers holding a record the store\'s history holds other bytes for are a rollback at start-up, though the store\'s counter is higher', async () => {
  const f = guardFixture(10n, [null, null, null], undefined, [], undefined, undefined, { recheckMs: 60_000 });
  try {
    copyWrittenPast(f, 10n, 14n);
    const theirs = f.sealFresh(12n);
    f.keepersHold([theirs, null, theirs]);
    await f.guard.start();
    assert.equal(f.guard.state, 'refused');
    assert.equal(cause(f), 'diverged');
    await until(() => f.keepers().every((c) => c !== null && c > 14n), 'evidence above the store too');
  } finally {
    await f.done();
  }
});

test('anchor history: Keepers and a store of one history pass; a counter the history no longer holds binds nothing', async () => {
  const f = guardFixture(10n, [null, null, null], undefined, [], undefined, undefined, { recheckMs: 60_000 });
  try {
    for (let c = 11n; c <= 14n; c++) f.replace(f.seal(c));
    f.keepersHold([f.seal(12n), f.seal(14n), null]);
    await f.guard.start();
    assert.equal(f.guard.state, 'serving');
    f.write();
    f.guard.keeperStatus(1, status(f.seal(13n)));
    // Another history's record at a counter pruned from the history (never stored here): no verdict.
    f.guard.keeperStatus(3, status(f.sealFresh(3n)));
    await f.guard.lookNow();
    await sleep(30);
    assert.equal(f.guard.state, 'serving');
    assert.deepEqual(f.events, []);
  } finally {
    await f.done();
  }
});

test('anchor history: other processes moving the store forward on the same history is no rollback (the chain binds what it moved past)', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n], undefined, [], undefined, undefined, { recheckMs: 60_000 });
  try {
    await f.guard.start();
    for (let round = 0; round < 5; round++) {
      f.write();
      const c = f.stored()!;
      f.replace(f.sealFresh(c + 1n)); // another worker's batch, after this one's
      f.replace(f.sealFresh(c + 2n));
      f.write();
      await f.guard.lookNow();
    }
    await sleep(30);
    assert.equal(f.guard.state, 'serving');
    assert.deepEqual(f.events.filter((e) => e[0] === 'rollback.detected'), []);
  } finally {
    await f.done();
  }
});

test('anchor history: an accept while the Keepers are silent lands above the evidence this process handed out, so the evidence never looks like another history', async () => {
  const silent = [0, 0, 0];
  const f = guardFixture(10n, [10n, 10n, 10n], undefined, silent, undefined, undefined, { recheckMs: 60_000 });
  try {
    await f.guard.start();
    f.write();
    f.replace(f.seal(5n)); // an older copy
    assert.throws(() => f.write());
    await until(() => f.keepers().every((c) => c !== null && c > 1000n), 'evidence handed over');
    const evidence = f.keepers()[0]!;
    silent.fill(Date.now() + 60_000); // the Keepers do not answer during the accept
    const out = await f.guard.accept();
    assert.ok(out && BigInt(out.counter) > evidence, 'above the evidence');
    silent.fill(0);
    f.guard.keeperStatus(1, status(f.keeperHolds(0)!));
    await sleep(50);
    assert.equal(f.guard.state, 'serving');
  } finally {
    await f.done();
  }
});

test('attack-rotation-crash-recount: a Nexus that adopts the old root\'s record after a crash between the root switch and its re-key counts on above it, never from 1 again (other processes read those counters)', async () => {
  const oldRoot = RootKey.generate();
  const oldKey = new AnchorKey(oldRoot);
  const f = guardFixture(null, [null, null, null], undefined, [], undefined, undefined, { recheckMs: 60_000 });
  try {
    f.replace(oldKey.seal(1000n)); // sealed under the root before the switch
    f.keepersSealWith(oldKey);
    f.keepersCounters([1000n, 1000n, 1000n]);
    await f.guard.start();
    assert.equal(f.guard.state, 'serving', 'adopted: the Keepers\' anchors do not verify under the new root either');
    f.write();
    assert.equal(f.stored(), 1001n);
    await f.guard.lookNow();
    assert.equal(f.guard.state, 'serving');
  } finally {
    oldKey.destroy();
    oldRoot.destroy();
    await f.done();
  }
});

test('anchor history: records still to be bound when a re-key finds the store silent are bound after it (not dropped with the old chain)', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n], undefined, [], undefined, undefined, { recheckMs: 60_000 });
  try {
    await f.guard.start();
    f.write(); // 11, this process's
    copyWrittenPast(f, 10n, 14n);
    f.failHistoryReads(100); // the store does not answer history reads for now
    f.write(); // moves past 11: queued, its read fails
    await sleep(20);
    f.keys.clear(); // a rotation: the new root in force
    f.keys.install(RootKey.generate(), [], { epoch: 2, threshold: 2, shares: 3, commitments: null as unknown as Commitments, peers: ['k1', 'k2', 'k3'] });
    await f.guard.rekey(); // the re-key's bind fails too
    assert.equal(f.guard.state, 'serving');
    f.failHistoryReads(0);
    await f.guard.lookNow();
    await until(() => f.guard.state === 'refused', 'refused once the store answers');
    assert.equal(cause(f), 'diverged');
  } finally {
    await f.done();
  }
});
