/**
 * The rollback guard's states with a fake store anchor and fake Keepers: a Keeper ahead of
 * the store → refused (503 `state_rollback_detected`, readiness `rollback`, audit event,
 * nothing armed or pushed); accept → the store moves above the Keepers, armed, serving,
 * audited; a second accept changes nothing. Keepers without anchors → serving at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey, type Commitments } from '../../crypto/index.js';
import { AnchorKey } from './mac.js';
import { ROLLBACK_ERR } from './guard.js';
import { guardFixture as fixture } from '../../../test/helpers/rollback-guard.js';

test('rollback guard: keepers ahead of the store → refused, nothing armed, the Keepers given evidence far above, then accepted', async () => {
  const f = fixture(10n, [12n, null, 11n]);
  assert.equal(f.guard.state, 'checking');
  assert.equal(f.guard.readinessCause(), 'rollback_check');
  await f.guard.start();
  assert.equal(f.guard.state, 'refused');
  assert.equal(f.guard.serving(), false);
  assert.equal(f.guard.readinessCause(), 'rollback');
  const err = f.guard.refusal();
  assert.equal(err?.code, ROLLBACK_ERR);
  assert.equal(err?.status, 503);
  assert.equal(f.armed(), false);
  assert.deepEqual(f.events[0], ['rollback.detected', { storeCounter: 10, keeperCounter: 12, keepers: 2 }]);
  const evidence = 12n + 2n ** 32n; // no other process on the store writes past it
  for (let i = 0; i < 100 && !f.keepers().every((c) => c === evidence); i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(f.keepers(), [evidence, evidence, evidence]);
  f.pushed.length = 0;

  const r = await f.guard.accept();
  const accepted = Number(evidence + 2n ** 32n); // far above every anchor known
  assert.deepEqual(r, { storeCounter: 10, keeperCounter: 12, counter: accepted });
  assert.equal(f.stored(), BigInt(accepted));
  assert.equal(f.guard.state, 'serving');
  assert.equal(f.guard.refusal(), undefined);
  assert.equal(f.armed(), true);
  assert.deepEqual(f.events[1], ['rollback.accepted', { storeCounter: 10, keeperCounter: 12, counter: accepted }]);
  assert.deepEqual([...f.pushed].sort(), ['k1', 'k2', 'k3']);
  assert.equal(await f.guard.accept(), undefined, 'nothing more to accept');
  await f.done();
});

test('rollback guard: keepers without anchors, or behind the store → serving, armed, no event', async () => {
  for (const [store, keepers] of [[null, [null, null, null]], [7n, [7n, 5n, null]]] as const) {
    const f = fixture(store, [...keepers]);
    await f.guard.start();
    assert.equal(f.guard.state, 'serving');
    assert.equal(f.guard.readinessCause(), undefined);
    assert.equal(f.armed(), true);
    assert.deepEqual(f.events, []);
    assert.equal(await f.guard.accept(), undefined);
    await f.done();
  }
});

test('rollback guard: another instance writes and pushes during the check (shared postgres) → no false rollback', async () => {
  // The other instance commits counter 12 to the store, then pushes it: the Keepers answer 12
  // after the store already holds it. Reading the store before the Keepers saw 10 → refused.
  const f = fixture(10n, [12n, 12n, 12n], (bump) => bump(12n));
  await f.guard.start();
  assert.equal(f.guard.state, 'serving');
  assert.deepEqual(f.events, []);
  await f.done();
});

test('rollback guard: a Keeper heard only after the check window still counts (a loaded start must not skip the evidence)', async () => {
  // Keeper 1 holds the evidence but answers only after the check window (0.3 s here, 3 s by
  // default: SPIKE_NEXUS_ROLLBACK_CHECK_WINDOW); the others hold nothing. With no threshold
  // known every Keeper is waited for (up to 30 s).
  const f = fixture(10n, [12n, null, null], undefined, [Date.now() + 800], undefined, undefined, { checkWindowMs: 300 });
  const alive = setInterval(() => undefined, 1000); // the guard's retry timers are unref'd (a server keeps the loop alive)
  await f.guard.start();
  clearInterval(alive);
  assert.equal(f.guard.state, 'refused');
  await f.done();
});

test('rollback guard: a Keeper silent past the check window is not waited for once the threshold answered (SPIKE_NEXUS_ROLLBACK_CHECK_WINDOW)', async () => {
  // Sharing known (threshold 2); Keeper 1 stays silent. The check waits the window (0.2 s here),
  // not the 3 s default, then decides on Keepers 2 and 3.
  const f = fixture(10n, [null, 10n, 10n], undefined, [Date.now() + 60_000], undefined, async () => false, { checkWindowMs: 200 });
  const alive = setInterval(() => undefined, 1000);
  const t0 = Date.now();
  await f.guard.start();
  const took = Date.now() - t0;
  clearInterval(alive);
  assert.equal(f.guard.state, 'serving');
  assert.ok(took >= 200 && took < 3000, `decided after ${took} ms`);
  await f.done();
});

test('rollback guard: the store goes back while serving (an older copy restored, the record planted or gone) → refused at once, audited; accept re-anchors above everything seen', async () => {
  for (const back of ['older', 'planted', 'gone'] as const) {
    const f = fixture(10n, [10n, 10n, 10n]);
    await f.guard.start();
    assert.equal(f.guard.state, 'serving');
    f.write();
    f.write();
    assert.equal(f.stored(), 12n);
    f.replace(back === 'older' ? f.seal(5n) : back === 'planted' ? Buffer.concat([Buffer.from(f.seal(99n)).subarray(0, 8), Buffer.alloc(32, 7)]) : null);
    assert.throws(() => f.write(), (e: unknown) => (e as { code?: string }).code === 'store_busy');
    assert.equal(f.guard.state, 'refused', back);
    assert.equal(f.guard.readinessCause(), 'rollback');
    assert.equal(f.guard.refusal()?.code, ROLLBACK_ERR);
    assert.equal(f.events.at(-1)?.[0], 'rollback.detected');
    assert.equal(f.armed(), false, 'nothing advances over the evidence');
    const r = await f.guard.accept();
    assert.ok(r && r.counter > 12, JSON.stringify(r));
    assert.equal(f.guard.state, 'serving');
    f.write();
    assert.equal(f.stored(), BigInt(r.counter) + 1n);
    await f.done();
  }
});

test('rollback guard: the Keepers of the stored sharing are asked too (settings changed to another Keeper set: the anchors are on the old ones)', async () => {
  const f = fixture(10n, [12n, null], undefined, [], { configured: ['k2'], stored: ['k1'] });
  await f.guard.start();
  assert.equal(f.guard.state, 'refused');
  await f.done();
});

test('rollback guard: another worker rotated the root key (the stored anchor is sealed under a key this process lacks; the store and the Keepers say so) → stale, not ready, no alarm; when either does not say so → the alarm', async () => {
  const other = RootKey.fromBytes(Buffer.alloc(32, 9));
  const otherKey = new AnchorKey(other);
  const cases = [
    { store: true, keepers: true, stale: true },
    { store: false, keepers: true, stale: false }, // the store shows no newer root
    { store: true, keepers: false, stale: false }, // records a database writer can forge, Keepers unmoved
    { store: 'unknown', keepers: true, stale: false }, // the store cannot answer
  ] as const;
  for (const c of cases) {
    const judged: string[] = [];
    const f = fixture(10n, [10n, 10n, 10n], undefined, [], undefined, async () => {
      judged.push('asked');
      if (c.store === 'unknown') throw new Error('store_unavailable');
      return c.store;
    });
    await f.guard.start();
    f.write();
    if (c.keepers) f.keepersAt(2); // the rotating worker's new sharing
    f.replace(otherKey.seal(11n)); // what the rotating worker's re-key leaves in the store
    assert.throws(() => f.write(), (e: unknown) => (e as { code?: string }).code === 'store_busy');
    // Until the store and the Keepers have answered: refused as not ready, nothing armed, no alarm yet.
    assert.equal(f.guard.serving(), false);
    assert.equal(f.armed(), false);
    assert.deepEqual(f.events, []);
    for (let i = 0; i < 50 && f.guard.state === 'stale' && (c.stale ? f.staleCalls() === 0 : true); i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(judged, ['asked']);
    const label = JSON.stringify(c);
    if (c.stale) {
      assert.equal(f.guard.state, 'stale', label);
      assert.equal(f.guard.readinessCause(), 'root_rotated_elsewhere');
      assert.equal(f.guard.refusal(), undefined, 'the usual not-ready answer, not state_rollback_detected');
      assert.deepEqual(f.events.map((e) => e[0]), ['rollback.root_rotated_elsewhere'], 'audited, but no rollback event');
      assert.equal(f.staleCalls(), 1);
      assert.equal(await f.guard.accept(), undefined, 'nothing for accept-rollback to accept');
    } else {
      assert.equal(f.guard.state, 'refused', label);
      assert.equal(f.guard.refusal()?.code, ROLLBACK_ERR);
      assert.equal(f.events.at(-1)?.[0], 'rollback.detected');
      assert.equal(f.staleCalls(), 0);
    }
    await f.done();
  }
  otherKey.destroy();
  other.destroy();
});

test('rollback guard: stale, the old keys dropped, the new root recovered → checked afresh as at start-up: serving when the Keepers agree with the store; the alarm when they are ahead (a rollback after the rotation is still caught)', async () => {
  for (const ahead of [false, true]) {
    const other = RootKey.fromBytes(Buffer.alloc(32, 9));
    const otherKey = new AnchorKey(other);
    const f = fixture(10n, [10n, 10n, 10n], undefined, [], undefined, async () => true);
    await f.guard.start();
    f.keepersAt(2);
    f.replace(otherKey.seal(11n)); // the rotating process's re-key, pushed to the Keepers too
    f.keepersSealWith(otherKey);
    f.keepersCounters(ahead ? [13n, null, 11n] : [11n, 11n, null]);
    assert.throws(() => f.write(), (e: unknown) => (e as { code?: string }).code === 'store_busy');
    for (let i = 0; i < 200 && f.staleCalls() === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(f.staleCalls(), 1);
    await f.guard.start(); // not dropped yet: nothing happens, still stale
    assert.equal(f.guard.state, 'stale');
    // What rejoin.ts does: drop the anchor keys and the root; recovery installs the new root.
    f.guard.dropKeys();
    f.keys.clear();
    assert.equal(f.guard.readinessCause(), 'root_rotated_elsewhere', 'still named while recovering');
    f.keys.install(RootKey.fromBytes(Buffer.alloc(32, 9)), [], { epoch: 2, threshold: 2, shares: 3, commitments: null as unknown as Commitments, peers: ['k1', 'k2', 'k3'] });
    await f.guard.start();
    const label = `keepers ahead: ${ahead}`;
    if (!ahead) {
      assert.equal(f.guard.state, 'serving', label);
      assert.equal(f.armed(), true);
      f.write();
      assert.equal(f.stored(), 12n, 'the chain continues under the new key');
      assert.ok(!f.events.some((e) => e[0] === 'rollback.detected'), label);
    } else {
      assert.equal(f.guard.state, 'refused', label);
      assert.equal(f.guard.refusal()?.code, ROLLBACK_ERR);
      assert.equal(f.events.at(-1)?.[0], 'rollback.detected');
    }
    await f.done();
    otherKey.destroy();
    other.destroy();
  }
});

test('rollback guard: a store put back under a Nexus that only reads (no write to meet it) is refused within the periodic look', async () => {
  const f = fixture(10n, [10n, 10n, 10n], undefined, [], undefined, undefined, { recheckMs: 20 });
  const alive = setInterval(() => undefined, 1000); // the look's timer is unref'd (a server keeps the loop alive)
  try {
    await f.guard.start();
    f.write();
    f.write();
    f.replace(f.seal(5n)); // an older copy: no write follows
    for (let i = 0; i < 200 && f.guard.state === 'serving'; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(f.guard.state, 'refused');
    assert.equal(f.events.at(-1)?.[0], 'rollback.detected');
  } finally {
    clearInterval(alive);
    await f.done();
  }
});

test('rollback guard: the periodic look passes while the store moves forward (other writers advance the counter)', async () => {
  const f = fixture(10n, [10n, 10n, 10n], undefined, [], undefined, undefined, { recheckMs: 10 });
  const alive = setInterval(() => undefined, 1000);
  try {
    await f.guard.start();
    for (let c = 11n; c < 20n; c++) {
      f.replace(f.seal(c)); // another instance's advance
      await new Promise((r) => setTimeout(r, 15));
    }
    assert.equal(f.guard.state, 'serving');
    assert.deepEqual(f.events, []);
  } finally {
    clearInterval(alive);
    await f.done();
  }
});

test('rollback guard: an older anchor or a vanished one is a rollback whatever the store says of rotations (the judge is not asked)', async () => {
  for (const back of ['older', 'gone'] as const) {
    let asked = 0;
    const f = fixture(10n, [10n, 10n, 10n], undefined, [], undefined, async () => { asked++; return true; });
    await f.guard.start();
    f.write();
    f.replace(back === 'older' ? f.seal(5n) : null);
    assert.throws(() => f.write(), (e: unknown) => (e as { code?: string }).code === 'store_busy');
    assert.equal(f.guard.state, 'refused', back);
    assert.equal(asked, 0);
    await f.done();
  }
});

/** A sharing record to install after a rejoin (the fixture's Keepers k1..k3). */
const SHARING_AFTER = { epoch: 1, threshold: 2, shares: 3, commitments: null as unknown as Commitments, peers: ['k1', 'k2', 'k3'] };

/**
 * Sends `f` down the stale path with `forged` (a record only another root verifies) and the
 * Keepers at a newer epoch, then drops the keys as src/nexus/rejoin.ts does.
 */
async function staleThenDropped(f: ReturnType<typeof fixture>, forged: Uint8Array): Promise<void> {
  f.keepersAt(2); // e.g. a sharing move's pending epoch on the Keepers: not something the attacker must cause
  f.replace(forged);
  assert.throws(() => f.write(), (e: unknown) => (e as { code?: string }).code === 'store_busy');
  for (let i = 0; i < 200 && f.staleCalls() === 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(f.staleCalls(), 1, 'took the stale path, no alarm');
  f.guard.dropKeys();
  f.keys.clear();
}

test('rollback guard: after a rotation elsewhere, a rotated store put back below what this process had read before the rejoin is refused, though above the Keepers\' lagging anchor', async () => {
  const other = RootKey.fromBytes(Buffer.alloc(32, 9));
  const otherKey = new AnchorKey(other);
  // rootMovedOn is what the store says (a database writer could forge it: kcv + seal fence records).
  const f = fixture(10n, [10n, 10n, 10n], undefined, [], undefined, async () => true);
  await f.guard.start();
  for (let i = 0; i < 10; i++) f.write(); // the store moves to 20; the Keepers' copies lag (push failed / debounce)
  assert.equal(f.stored(), 20n);
  await staleThenDropped(f, otherKey.seal(21n));
  // An older copy of the rotated store comes back (counter 12: above the Keepers' 10, below the 20 read).
  f.replace(otherKey.seal(12n));
  f.keys.install(RootKey.fromBytes(Buffer.alloc(32, 9)), [], SHARING_AFTER);
  await f.guard.start();
  assert.equal(f.guard.state, 'refused', 'the copy is older than what this process had read from the store');
  assert.equal(f.events.at(-1)?.[0], 'rollback.detected');
  assert.equal((f.events.at(-1)?.[1] as { cause?: string } | undefined)?.cause, undefined, 'the start-up check, not the same-root one');
  await f.done();
  otherKey.destroy();
  other.destroy();
});

test('rollback guard: a rotation elsewhere claimed by forged store records, after which the Keepers give back the SAME root, is a rollback alarm (and ends the rejoin: no loop)', async () => {
  const other = RootKey.fromBytes(Buffer.alloc(32, 9));
  const otherKey = new AnchorKey(other);
  const f = fixture(10n, [10n, 10n, 10n], undefined, [], undefined, async () => true);
  await f.guard.start();
  f.write();
  const bytes = f.keys.root().bytes();
  await staleThenDropped(f, otherKey.seal(30n));
  // The genuine records put back at a counter above everything read: only the same root gives it away.
  f.replace(f.seal(40n));
  f.keys.install(RootKey.fromBytes(bytes), [], SHARING_AFTER);
  bytes.fill(0);
  await f.guard.start();
  assert.equal(f.guard.state, 'refused');
  assert.equal(f.guard.refusal()?.code, ROLLBACK_ERR);
  const last = f.events.at(-1);
  assert.equal(last?.[0], 'rollback.detected');
  assert.equal((last?.[1] as { cause?: string } | undefined)?.cause, 'root_not_rotated');
  await f.done();
  otherKey.destroy();
  other.destroy();
});
