/**
 * Rollback evidence shared between the processes on one store (several workers, several
 * instances on one PostgreSQL). Each process's chain knows only the anchor records it read or
 * committed, so a copy put back between what one process saw and what another wrote passes the
 * first one's own checks. Two things close that: the Keeper probe's status answers show a
 * verified anchor above the store (pusher.ts `onBehind`), and a process that detects a
 * rollback hands the Keepers the highest counter it knows of (guard.ts), so the others find
 * the store behind the Keepers and a restart's check refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../crypto/index.js';
import { AnchorKey } from './mac.js';
import { guardFixture } from '../../../test/helpers/rollback-guard.js';

const status = (anchor: Uint8Array) => ({ epoch: 1, id: null, pending: null, anchor });
const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
};

test('attack-rollback-unseen-by-this-worker: a copy put back above what this process read, below what another wrote and pushed, is refused at the next Keeper status', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n]);
  try {
    await f.guard.start();
    assert.equal(f.guard.state, 'serving');
    await until(() => f.pushed.length >= 3, 'the first push');
    // Another worker writes up to 15 and pushes it; this one never reads those records.
    f.keepersCounters([15n, 15n, 15n]);
    f.replace(f.seal(12n)); // the copy put back: older than 15, newer than anything this one saw
    await f.guard.lookNow();
    assert.equal(f.guard.state, 'serving', 'this process\'s own look cannot tell (the reason for the Keeper comparison)');
    f.guard.pusher?.onStatus(1, status(f.seal(15n)));
    await until(() => f.guard.state === 'refused', 'refused at the Keeper status');
    assert.equal(f.events.at(-1)?.[0], 'rollback.detected');
    assert.deepEqual(f.events.at(-1)?.[1], { cause: 'behind_keepers', storeCounter: 12, highestSeen: 15 });
    assert.equal(f.armed(), false);
    const r = await f.guard.accept();
    assert.ok(r && r.counter > 15, JSON.stringify(r));
    assert.equal(f.guard.state, 'serving');
  } finally {
    await f.done();
  }
});

test('rollback evidence: the store holding as much as the Keeper (another process pushed it) is no rollback', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n]);
  try {
    await f.guard.start();
    f.replace(f.seal(15n));
    f.guard.pusher?.onStatus(1, status(f.seal(15n)));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(f.guard.state, 'serving');
    assert.deepEqual(f.events, []);
  } finally {
    await f.done();
  }
});

test('attack-rollback-evidence-lost: a rollback found by this process before its anchor reached the Keepers is handed to them (a restart or another worker then refuses too)', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n]);
  try {
    await f.guard.start();
    await until(() => f.pushed.length >= 3, 'the first push');
    f.write();
    f.write(); // 12, not pushed yet (the debounce)
    f.replace(f.seal(10n));
    assert.throws(() => f.write(), (e: unknown) => (e as { code?: string }).code === 'store_busy');
    assert.equal(f.guard.state, 'refused');
    await until(() => f.keepers().every((c) => c === 12n), `the Keepers hold the evidence: ${f.keepers().join(',')}`);
  } finally {
    await f.done();
  }
});

test('rollback evidence: a Keeper already higher is not lowered', async () => {
  const f = guardFixture(10n, [10n, 30n, 10n]);
  try {
    await f.guard.start(); // keeper 2 ahead: refused at start-up; accept, then serve
    assert.equal(f.guard.state, 'refused');
    const r = await f.guard.accept();
    assert.ok(r && r.counter === 31, JSON.stringify(r));
    f.keepersCounters([31n, 50n, 31n]);
    f.write();
    f.replace(f.seal(20n));
    assert.throws(() => f.write());
    await until(() => f.keepers()[0] === 32n, `raised: ${f.keepers().join(',')}`);
    assert.deepEqual(f.keepers(), [32n, 50n, 32n]);
  } finally {
    await f.done();
  }
});

test('rollback evidence: Keepers holding another root\'s anchors (a rotation elsewhere) are left alone', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n]);
  const other = RootKey.fromBytes(Buffer.alloc(32, 9));
  const otherKey = new AnchorKey(other);
  try {
    await f.guard.start();
    await until(() => f.pushed.length >= 3, 'the first push');
    f.keepersSealWith(otherKey);
    const pushes = f.pushed.length;
    f.write();
    f.replace(f.seal(5n));
    assert.throws(() => f.write());
    assert.equal(f.guard.state, 'refused');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(f.pushed.length, pushes, 'nothing sent over another root\'s anchors');
  } finally {
    await f.done();
    otherKey.destroy();
    other.destroy();
  }
});

test('rollback evidence: accept goes above what the Keepers hold now (another process handed them more after this one\'s verdict)', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n]);
  try {
    await f.guard.start();
    f.write();
    f.replace(f.seal(5n));
    assert.throws(() => f.write());
    await until(() => f.keepers().every((c) => c === 11n), 'evidence');
    f.keepersCounters([40n, 11n, 11n]);
    const r = await f.guard.accept();
    assert.ok(r && r.counter === 41, JSON.stringify(r));
  } finally {
    await f.done();
  }
});
