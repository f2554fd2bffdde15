/**
 * The two-phase sharing move against in-memory Keeper slots (the real slot rules, no
 * network): a refresh, a reshare to another (n, t, Keeper list) and back, one move at a
 * time, a Keeper that never acknowledges, and a Nexus "crash" after every step followed by
 * a fresh Nexus recovering the same key from whatever the Keepers and the store hold.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { combineShares, RootKey, splitSecret, wipeShare } from '../../crypto/index.js';
import { assertCombines, bootstrapped, logger, mover, urls } from '../../../test/helpers/fake-keepers.js';
import { MoveError } from './move.js';
import { loadPending, nextEpoch, storePending } from './pending.js';
import { KeeperSync } from './recovery.js';
import { loadSharing } from './sharing.js';
import { KeyState } from './state.js';
import { resyncSharing } from './resync.js';
import { differsFromConfig, SharingTasks } from './tasks.js';

test('refresh: every Keeper holds epoch 2 only, the store records it, any t new shares rebuild the same key, old shares no longer verify', async () => {
  const peers = urls(3);
  const { root, store, keys, k } = await bootstrapped(2, peers);
  const old = k.sharesAt(peers, 1);
  const next = await mover(store, keys, k).move('refresh', { threshold: 2, shares: 3, peers });
  assert.equal(next.epoch, 2);
  assert.equal((await loadSharing(store))?.epoch, 2);
  assert.equal(await loadPending(store, 2), undefined);
  assert.equal(keys.sharing()?.epoch, 2);
  const fresh = k.sharesAt(peers, 2);
  assertCombines([fresh[2]!, fresh[0]!], 2, root);
  for (const s of old) assert.equal(next.commitments.verifyShare(s), false, 'an epoch-1 share does not verify against epoch 2');
  assert.equal(Buffer.from(keys.shareFor(2).value).toString('hex'), Buffer.from(fresh[1]!.value).toString('hex'));
});

test('step points (test fault injection) are awaited in order: a step held keeps the move there; a rotation\'s stage passes the first two', async () => {
  const peers = urls(3);
  const { store, keys, k } = await bootstrapped(2, peers);
  const seen: string[] = [];
  let stored = 1;
  const m = mover(store, keys, k, async (step) => {
    seen.push(step);
    await sleep(5);
    if (step === 'after-pending-push') assert.equal((await loadSharing(store))?.epoch, stored, 'nothing committed while held');
  });
  await m.move('refresh', { threshold: 2, shares: 3, peers });
  assert.deepEqual(seen, ['after-pending-store', 'after-pending-push', 'after-commit']);
  seen.length = 0;
  stored = 2;
  const rot = m.forRotation();
  const fresh = RootKey.generate();
  try {
    const staged = await rot.stage(fresh);
    staged.basis.forEach(wipeShare);
  } finally {
    rot.done?.();
    fresh.destroy();
  }
  assert.deepEqual(seen, ['after-pending-store', 'after-pending-push']);
});

test('one move at a time: a second request while one runs → move_in_progress; a Keeper that never acknowledges → move_keepers_unacked, the move is abandoned and its epoch is never reused', async () => {
  const peers = urls(3);
  const { store, keys, k } = await bootstrapped(2, peers);
  const m = mover(store, keys, k);
  const first = m.move('refresh', { threshold: 2, shares: 3, peers });
  await assert.rejects(m.move('refresh', { threshold: 2, shares: 3, peers }), (e: unknown) => e instanceof MoveError && e.code === 'move_in_progress');
  await first;
  await assert.rejects(m.move('refresh', { threshold: 4, shares: 3, peers }), (e: unknown) => e instanceof MoveError && e.code === 'move_bad_target');
  k.down.add(peers[2]!);
  await assert.rejects(m.move('refresh', { threshold: 2, shares: 3, peers }), (e: unknown) => e instanceof MoveError && e.code === 'move_keepers_unacked');
  assert.equal((await loadSharing(store))?.epoch, 2, 'the current sharing stays');
  assert.equal(keys.sharing()?.epoch, 2);
  assert.equal(await loadPending(store, 2), undefined, 'the pending record is cleared');
  assert.equal(await nextEpoch(store, 2), 4, 'epoch 3 was handed out once and is never reused');
  k.down.clear();
  assert.equal((await m.move('refresh', { threshold: 2, shares: 3, peers })).epoch, 4);
  k.sharesAt(peers, 4);
});

test('attack-sharing-record-replay: a sharing naming a Keeper outside the configuration cannot be refreshed or rotated (move_keeper_not_configured, nothing stored or sent); a reshare to the configured Keepers can', async () => {
  const recorded = [...urls(2), 'https://k9'];
  const configured = urls(3);
  const { store, keys, k } = await bootstrapped(2, recorded);
  k.recipients = new Set(configured);
  k.sent.length = 0;
  const m = mover(store, keys, k);
  const notConfigured = (e: unknown): boolean => e instanceof MoveError && e.code === 'move_keeper_not_configured';
  await assert.rejects(m.move('refresh', { threshold: 2, shares: 3, peers: recorded }), notConfigured);
  const rot = m.forRotation();
  await assert.rejects(rot.stage(RootKey.generate()), notConfigured);
  rot.done?.();
  assert.equal(k.sent.length, 0, 'nothing was sent');
  assert.equal(await nextEpoch(store, 1), 2, 'no epoch was handed out');
  assert.equal((await m.move('reshare', { threshold: 2, shares: 3, peers: configured })).epoch, 2);
  assert.deepEqual(k.sent.filter((x) => x.url === 'https://k9'), [], 'the retired Keeper never got a share');
});

test('reshare 2-of-3 → 3-of-5 (two new Keepers) → 2-of-3 on other Keepers: same root key; Keepers of the new set hold only the new epoch', async () => {
  const peers = urls(3);
  const { root, store, keys, k } = await bootstrapped(2, peers);
  const m = mover(store, keys, k);
  const five = urls(5);
  const s5 = await m.move('reshare', { threshold: 3, shares: 5, peers: five });
  assert.deepEqual([s5.threshold, s5.shares, s5.commitments.threshold], [3, 5, 3]);
  const at2 = k.sharesAt(five, 2);
  assertCombines([at2[4]!, at2[0]!, at2[3]!], 3, root);
  assert.throws(() => combineShares([at2[0]!, at2[1]!], 3), 'two shares are no longer enough');
  const back = [...urls(2, 4), peers[0]!];
  await m.move('reshare', { threshold: 2, shares: 3, peers: back });
  const at3 = k.sharesAt(back, 3);
  assertCombines([at3[1]!, at3[2]!], 2, root);
  assert.deepEqual((await loadSharing(store))?.peers, back);
});

test('SSS-SETCHANGE: a Keeper list change that shifts positions never sends a Keeper a second share of one sharing (one id per Keeper per epoch)', async () => {
  const peers = urls(3);
  const { root, store, keys, k } = await bootstrapped(2, peers);
  peers.forEach((url, i) => k.sent.push({ url, epoch: 1, id: i + 1 })); // what Bootstrap gave them
  const m = mover(store, keys, k);
  const shifted = [peers[1]!, peers[2]!, 'https://k4']; // k1 dropped: k2 and k3 move up one position
  await m.move('reshare', { threshold: 2, shares: 3, peers: shifted });
  const ids = new Map<string, Set<number | undefined>>();
  for (const e of k.sent) {
    const key = `${e.url} epoch ${e.epoch}`;
    ids.set(key, (ids.get(key) ?? new Set()).add(e.id));
  }
  for (const [key, set] of ids) assert.equal(set.size, 1, `${key} got shares ${[...set].join(', ')}`);
  assert.ok(!k.sent.some((e) => e.epoch === 1 && e.url === 'https://k4'), 'a new Keeper gets no share of the old sharing');
  assertCombines(k.sharesAt(shifted, 2).slice(1), 2, root);
});

test('a Keeper that restarted empty after acknowledging its pending share is sent it again before the commit; the move commits on shares every Keeper holds', async () => {
  const peers = urls(3);
  const { root, store, keys, k } = await bootstrapped(2, peers);
  const m = mover(store, keys, k, (step) => {
    if (step === 'after-pending-push') k.slot(peers[2]!).clear(); // kill -9 and restart of Keeper 3
  });
  const next = await m.move('refresh', { threshold: 2, shares: 3, peers });
  assert.equal((await loadSharing(store))?.epoch, next.epoch);
  assertCombines(k.sharesAt(peers, next.epoch).slice(1), 2, root);
});

test('a Keeper that restarted empty after acknowledging and then stays down → the move is abandoned before the commit (move_keepers_unacked), the old sharing stays', async () => {
  const peers = urls(3);
  const { root, store, keys, k } = await bootstrapped(2, peers);
  const m = mover(store, keys, k, (step) => {
    if (step !== 'after-pending-push') return;
    k.slot(peers[2]!).clear(); // kill -9 of Keeper 3 …
    k.down.add(peers[2]!); // … which does not come back
  });
  await assert.rejects(m.move('refresh', { threshold: 2, shares: 3, peers }), (e: unknown) => (e as { code?: string }).code === 'move_keepers_unacked');
  assert.equal((await loadSharing(store))?.epoch, 1, 'the store still records epoch 1');
  assert.equal(m.inFlight(), undefined, 'nothing in flight after the move ended');
  const held = [k.slot(peers[0]!).get()!, k.slot(peers[1]!).get()!];
  assert.deepEqual(held.map((h) => h.epoch), [1, 1], 'Keepers 1 and 2 still hold their epoch-1 shares');
  assertCombines(held.map((h) => ({ id: h.id!, value: h.value })), 2, root);
});

for (const step of ['after-pending-store', 'after-pending-push', 'after-commit'] as const) {
  test(`FI: Nexus dies ${step}; a Keeper restarted empty too → a fresh Nexus recovers the same key and every Keeper ends on one epoch`, async () => {
    const peers = urls(3);
    const { root, store, keys, k } = await bootstrapped(2, peers);
    const crash = new Error('crash');
    await assert.rejects(mover(store, keys, k, (s) => { if (s === step) throw crash; }).move('refresh', { threshold: 2, shares: 3, peers }), crash);
    k.slot(peers[1]!).clear(); // a Keeper killed as well
    const fresh = new KeyState();
    const sync = new KeeperSync({
      peers, threshold: 2, shares: 3, client: k.client(), store, keys: fresh, logger,
      initialBackoffMs: 5, maxBackoffMs: 20, pushIntervalMs: 50,
    });
    sync.start();
    try {
      const deadline = Date.now() + 10_000;
      while (!fresh.isReady() && Date.now() < deadline) await sleep(10);
      assert.ok(fresh.root().equals(root));
      const epoch = (await loadSharing(store))!.epoch;
      assert.equal(epoch, step === 'after-pending-store' ? 1 : 2, 'finished when t Keepers held the new sharing, abandoned otherwise');
      assert.equal(await loadPending(store, epoch), undefined);
      assert.equal(fresh.sharing()?.epoch, epoch);
      // the re-push brings every Keeper to that one epoch
      while (Date.now() < deadline && !peers.every((u) => k.slot(u).get()?.epoch === epoch && !k.slot(u).getPending())) await sleep(10);
      assertCombines(k.sharesAt(peers, epoch), 2, root);
    } finally {
      await sync.stop();
    }
  });
}

test('tasks: settings that differ from the stored sharing → a reshare once the key is in; the refresh schedule moves the epoch on', async () => {
  const peers = urls(3);
  const { root, store, keys, k } = await bootstrapped(2, peers);
  const m = mover(store, keys, k);
  const five = urls(5);
  assert.equal(differsFromConfig(keys.sharing()!, { threshold: 2, shares: 3, peers }), false);
  assert.equal(differsFromConfig(keys.sharing()!, { threshold: 3, shares: 5, peers: five }), true);
  const tasks = new SharingTasks({ mover: m, keys, logger, configured: { threshold: 3, shares: 5, peers: five }, refreshIntervalMs: 30 });
  tasks.start();
  try {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !((keys.sharing()?.epoch ?? 0) >= 4)) await sleep(10);
    const s = keys.sharing()!;
    assert.ok(s.epoch >= 4, `a reshare, then scheduled refreshes (epoch ${s.epoch})`);
    assert.deepEqual([s.threshold, s.shares, s.peers], [3, 5, five]);
  } finally {
    tasks.stop();
  }
  while (m.running()) await sleep(10);
  const s = keys.sharing()!;
  assertCombines(k.sharesAt(five, s.epoch).slice(1, 4), 3, root);
});

test('tasks: no move while Nexus refuses to serve (a rollback not accepted yet); the held-back reshare runs once it may', async () => {
  const peers = urls(3);
  const { store, keys, k } = await bootstrapped(2, peers);
  const m = mover(store, keys, k);
  const five = urls(5);
  let may = false;
  const tasks = new SharingTasks({ mover: m, keys, logger, configured: { threshold: 3, shares: 5, peers: five }, refreshIntervalMs: 20, mayRun: () => may });
  tasks.start();
  try {
    await sleep(300);
    assert.equal(keys.sharing()!.epoch, 1, 'no reshare and no refresh while held back');
    assert.equal(k.sent.length, 0, 'nothing sent to any Keeper');
    may = true;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && keys.sharing()!.shares !== 5) await sleep(10);
    assert.equal(keys.sharing()!.shares, 5, 'the reshare ran once allowed');
  } finally {
    tasks.stop();
  }
  while (m.running()) await sleep(10);
});

test('several Nexus on one database: a move whose pending record was replaced by another instance does not commit (move_superseded)', async () => {
  const peers = urls(3);
  const { root, store, keys, k } = await bootstrapped(2, peers);
  const theirs = splitSecret(root, 2, 3);
  let other: Promise<void> | undefined;
  const m = mover(store, keys, k, (s) => {
    if (s === 'after-pending-push') other = storePending(store, { kind: 'refresh', sharing: { epoch: 2, threshold: 2, shares: 3, commitments: theirs.commitments, peers } }, root);
  });
  // the hook is synchronous: the other instance's write lands before the check reads
  const run = m.move('refresh', { threshold: 2, shares: 3, peers });
  await assert.rejects(run, (e: unknown) => e instanceof MoveError && e.code === 'move_superseded');
  await other;
  assert.equal((await loadSharing(store))?.epoch, 1, 'nothing committed');
  assert.equal(keys.sharing()?.epoch, 1);
  theirs.shares.forEach(wipeShare);
});

test('several Nexus on one database: the other instance switches to the moved sharing from the Keepers, or pushes nothing while it cannot', async () => {
  const peers = urls(3);
  const { root, store, keys, k } = await bootstrapped(2, peers);
  const b = new KeyState(); // a second Nexus on the same database, holding epoch 1
  const basis1 = k.sharesAt(peers, 1).slice(0, 2);
  b.install(RootKey.fromBytes(root.bytes()), basis1, (await loadSharing(store))!);
  await mover(store, keys, k).move('refresh', { threshold: 2, shares: 3, peers });
  const opts = { store, keys: b, client: k.client(), peers, logger };
  assert.equal(await resyncSharing({ ...opts, keys }), 'current', 'the mover itself is current');
  k.down.add(peers[0]!).add(peers[1]!);
  assert.equal(await resyncSharing(opts), 'failed', 'one Keeper is not enough');
  assert.equal(b.sharing()?.epoch, 1);
  k.down.clear();
  assert.equal(await resyncSharing(opts), 'updated');
  assert.equal(b.sharing()?.epoch, 2);
  const fresh = k.sharesAt(peers, 2);
  for (let id = 1; id <= 3; id++) assert.equal(Buffer.from(b.shareFor(id).value).toString('hex'), Buffer.from(fresh[id - 1]!.value).toString('hex'));
});
