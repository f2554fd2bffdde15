/**
 * Rollback evidence shared between the processes on one store (several workers, several
 * instances on one PostgreSQL): witness.ts. Each process's chain knows only the anchor records
 * it read or committed, so a copy put back between what one process saw and what another
 * wrote passes the first one's own checks. The Keeper probe's status answers (and a push that
 * finds a Keeper ahead) compare a verified anchor above what this process knows with the
 * store; a process that detects a rollback hands the Keepers the highest counter it knows of,
 * and again while refused; an accept goes far above every anchor known.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../crypto/index.js';
import { AnchorKey } from './mac.js';
import { anchorStatus as status, guardFixture, sleep, until } from '../../../test/helpers/rollback-guard.js';

const MARGIN = 2n ** 32n;

test('attack-rollback-unseen-by-this-worker: a copy put back above what this process read, below what another wrote and pushed, is refused at the next Keeper status', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n]);
  try {
    await f.guard.start();
    await until(() => f.guard.pusher?.latest() !== undefined, 'the first push round');
    // Another worker writes up to 15 and pushes it; this one never reads those records.
    f.keepersCounters([15n, 15n, 15n]);
    f.replace(f.seal(12n)); // the copy put back: older than 15, newer than anything this one saw
    await f.guard.lookNow();
    assert.equal(f.guard.state, 'serving', 'this process\'s own look cannot tell (the reason for the Keeper comparison)');
    f.guard.keeperStatus(1, status(f.seal(15n)));
    await until(() => f.guard.state === 'refused', 'refused at the Keeper status');
    assert.deepEqual(f.events.at(-1), ['rollback.detected', { cause: 'behind_keepers', storeCounter: 12, highestSeen: 15 }]);
    // Far above what this process read (12); the Keeper's 15 is not raised again on top.
    await until(() => f.keepers().every((c) => c === 12n + MARGIN), `evidence: ${f.keepers().join(',')}`);
    assert.equal(f.armed(), false);
    const r = await f.guard.accept();
    assert.equal(r?.counter, Number(12n + 2n * MARGIN), 'far above the evidence handed over');
    assert.equal(f.guard.state, 'serving');
  } finally {
    await f.done();
  }
});

test('attack-rollback-after-catch-up: a process that learned another one\'s newer record from a Keeper status is measured against it when a copy is put back later', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n]);
  try {
    await f.guard.start();
    await until(() => f.guard.pusher?.latest() !== undefined, 'the first push round');
    f.replace(f.seal(15n)); // another worker wrote 11..15 and pushed 15
    f.keepersCounters([15n, 15n, 15n]);
    f.guard.keeperStatus(1, status(f.seal(15n)));
    await sleep(30);
    assert.equal(f.guard.state, 'serving', 'the store holds as much: no rollback');
    f.replace(f.seal(12n)); // then the copy is put back
    await f.guard.lookNow();
    assert.equal(f.guard.state, 'refused', 'the record read at the comparison moved this process\'s chain');
    assert.equal((f.events.at(-1)?.[1] as { cause?: string }).cause, 'behind');
  } finally {
    await f.done();
  }
});

test('attack-rollback-fresh-worker: a process that has read no anchor record yet (a new store; another worker wrote first) still compares Keeper statuses', async () => {
  const f = guardFixture(null, [null, null, null]);
  try {
    await f.guard.start();
    await sleep(30);
    f.replace(f.seal(4n)); // the other worker wrote 1..4 and pushed 4
    f.keepersCounters([4n, 4n, 4n]);
    f.replace(f.seal(1n)); // the copy put back
    f.guard.keeperStatus(1, status(f.seal(4n)));
    await until(() => f.guard.state === 'refused', 'refused');
  } finally {
    await f.done();
  }
});

test('rollback evidence: the store holding as much as the Keeper (another process pushed it) is no rollback', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n]);
  try {
    await f.guard.start();
    f.replace(f.seal(15n));
    f.guard.keeperStatus(1, status(f.seal(15n)));
    await sleep(50);
    assert.equal(f.guard.state, 'serving');
    assert.deepEqual(f.events, []);
  } finally {
    await f.done();
  }
});

test('attack-rollback-evidence-lost: a rollback found by this process before its anchor reached the Keepers is handed to them, and again after another process overwrote it', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n], undefined, [], undefined, undefined, { recheckMs: 30 });
  const alive = setInterval(() => undefined, 1000); // the timers are unref'd (a server keeps the loop alive)
  try {
    await f.guard.start();
    await until(() => f.guard.pusher?.latest() !== undefined, 'the first push round');
    f.write();
    f.write(); // 12, not pushed yet (the debounce)
    f.replace(f.seal(10n));
    assert.throws(() => f.write(), (e: unknown) => (e as { code?: string }).code === 'store_busy');
    assert.equal(f.guard.state, 'refused');
    const evidence = 12n + MARGIN; // far above: no other process can write past it before it hears of it
    await until(() => f.keepers().every((c) => c === evidence), `the Keepers hold the evidence: ${f.keepers().join(',')}`);
    f.keepersCounters([10n, evidence, evidence]); // a push of another process landed over it
    await until(() => f.keepers()[0] === evidence, 'handed over again while refused');
  } finally {
    clearInterval(alive);
    await f.done();
  }
});

test('rollback evidence: a Keeper already higher is not lowered', async () => {
  const f = guardFixture(10n, [10n, 30n, 10n]);
  try {
    await f.guard.start(); // keeper 2 ahead: refused at start-up; accept, then serve
    assert.equal(f.guard.state, 'refused');
    const r = await f.guard.accept();
    const base = 30n + 2n * MARGIN; // the start-up refusal's evidence (30 + margin), and the accept above it
    assert.equal(r?.counter, Number(base));
    f.keepersCounters([base, base + 3n * MARGIN, base]);
    f.write();
    f.replace(f.seal(20n));
    assert.throws(() => f.write());
    const evidence = base + 1n + MARGIN;
    await until(() => f.keepers()[0] === evidence, `raised: ${f.keepers().join(',')}`);
    assert.deepEqual(f.keepers(), [evidence, base + 3n * MARGIN, evidence]);
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
    await until(() => f.guard.pusher?.latest() !== undefined, 'the first push round');
    f.keepersSealWith(otherKey);
    const pushes = f.pushed.length;
    f.write();
    f.replace(f.seal(5n));
    assert.throws(() => f.write());
    assert.equal(f.guard.state, 'refused');
    await sleep(100);
    assert.equal(f.pushed.length, pushes, 'nothing sent over another root\'s anchors');
  } finally {
    await f.done();
    otherKey.destroy();
    other.destroy();
  }
});

test('attack-rollback-accept-realarm: after an accept, a Keeper silent during it and evidence landing late never look newer than the store', async () => {
  const silent: number[] = [];
  const f = guardFixture(10n, [10n, 10n, 10n], undefined, silent);
  try {
    await f.guard.start();
    f.write();
    f.replace(f.seal(5n));
    assert.throws(() => f.write()); // a real rollback: refused
    await sleep(50);
    f.keepersCounters([11n, 11n, 30n]); // another process raised Keeper 3 to what it knew
    silent[2] = Date.now() + 300; // Keeper 3 unreachable while the operator accepts
    const r = await f.guard.accept();
    assert.equal(f.guard.state, 'serving');
    await sleep(350);
    f.guard.keeperStatus(3, status(f.seal(30n))); // Keeper 3 answers again
    f.keepersCounters([25n, 25n, 30n]); // and another process's evidence lands late
    f.guard.keeperStatus(1, status(f.seal(25n)));
    await sleep(50);
    assert.equal(f.guard.state, 'serving', `accepted at ${r?.counter}; nothing new went back`);
    assert.equal(f.events.at(-1)?.[0], 'rollback.accepted');
  } finally {
    await f.done();
  }
});

test('rollback evidence: a slow store answer to a read issued before a Keeper status is no rollback (several instances on one database)', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n]);
  try {
    await f.guard.start();
    await until(() => f.guard.pusher?.latest() !== undefined, 'the first push round');
    f.slowReads(100);
    const look = f.guard.lookNow(); // issued now: it will answer 10
    f.replace(f.seal(15n)); // another instance commits up to 15 and pushes it
    f.keepersCounters([15n, 15n, 15n]);
    f.guard.keeperStatus(1, status(f.seal(15n)));
    await look;
    await sleep(250);
    assert.equal(f.guard.state, 'serving');
    assert.deepEqual(f.events, []);
  } finally {
    await f.done();
  }
});

test('rollback evidence: a process that learns of a rollback from another\'s evidence does not raise it again (no 2^32 per process)', async () => {
  const f = guardFixture(10n, [10n, 10n, 10n]);
  try {
    await f.guard.start();
    await until(() => f.guard.pusher?.latest() !== undefined, 'the first push round');
    const theirs = 11n + MARGIN; // another process found the rollback and handed this over
    f.keepersCounters([theirs, theirs, theirs]);
    f.guard.keeperStatus(1, status(f.seal(theirs)));
    await until(() => f.guard.state === 'refused', 'refused');
    await sleep(50);
    assert.deepEqual(f.keepers(), [theirs, theirs, theirs]);
  } finally {
    await f.done();
  }
});

test('attack-rollback-accepted-elsewhere: a refused process serves again once another process\'s accept re-anchored the store above its evidence, and reloads what the store holds', async () => {
  let reloaded = 0;
  const f = guardFixture(10n, [10n, 10n, 10n], undefined, [], undefined, undefined, { recheckMs: 20, onAcceptedElsewhere: async () => { reloaded++; } });
  const alive = setInterval(() => undefined, 1000);
  try {
    await f.guard.start();
    f.write();
    f.replace(f.seal(5n));
    assert.throws(() => f.write());
    const evidence = 11n + MARGIN;
    await until(() => f.keepers().every((c) => c === evidence), 'evidence');
    await sleep(60);
    assert.equal(f.guard.state, 'refused', 'a store still below the evidence stays refused');
    // Another instance's accept: the store far above the evidence, pushed to the Keepers.
    const accepted = evidence + MARGIN;
    f.replace(f.seal(accepted));
    f.keepersCounters([accepted, accepted, accepted]);
    await until(() => f.guard.state === 'serving', 'serving again');
    assert.equal(reloaded, 1);
    assert.equal(f.events.at(-1)?.[0], 'rollback.accepted_elsewhere');
    f.write();
    assert.equal(f.stored(), accepted + 1n);
  } finally {
    clearInterval(alive);
    await f.done();
  }
});
