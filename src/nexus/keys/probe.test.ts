/**
 * The status probe: which Keeper needs its share pushed at once, and during a sharing move
 * waiting for its commit, the re-push of a PENDING share to a Keeper that restarted empty
 * after acknowledging it (in-memory Keeper slots, no network).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { captureLogger } from '../../../test/helpers/mtls-harness.js';
import { KeeperCallError, ShareSlot } from '../../keeper/index.js';
import type { KeeperClient } from '../../keeper/index.js';
import type { MemoryStore } from '../../store/memory.js';
import { bootstrapped, logger, mover, urls, type FakeKeepers } from '../../../test/helpers/fake-keepers.js';
import { KeeperProbe, lacksMoveShare, staleReason } from './probe.js';
import { SharePusher } from './repush.js';
import type { KeyState } from './state.js';
import { SharingMover } from './move.js';

const st = (epoch: number | null, id: number | null, pending: number | null = null) => ({ epoch, id, pending, anchor: undefined });

test('probe: an empty keeper, another epoch or another share id needs a push; the current share does not', () => {
  assert.equal(staleReason(st(null, null), 2, 1), 'empty');
  assert.equal(staleReason(st(1, 2), 2, 3), 'other_epoch');
  assert.equal(staleReason(st(3, 1), 2, 3), 'other_id');
  assert.equal(staleReason(st(3, 2), 2, 3), undefined);
  // A SPIKE-style share without an id at the right epoch is left to the periodic push.
  assert.equal(staleReason(st(3, null), 2, 3), undefined);
});

test('attack-bootstrap-refill: a Keeper refilled after a restart by a Bootstrap identity (right epoch and id, any value) gets its share from the probe', async () => {
  const peers = urls(3);
  const { keys, k } = await bootstrapped(2, peers);
  // Keeper 2 restarts empty; a Bootstrap SVID (409 while the share was confirmed) wins the race.
  k.slots.set(peers[1]!, new ShareSlot());
  const garbage = randomBytes(32);
  garbage[0] = 1;
  k.slot(peers[1]!).contribute('bootstrap', { value: garbage, id: 2, epoch: 1 });
  assert.equal(staleReason(await k.client().status(peers[1]!), 2, 1), 'unconfirmed');
  const pushed: number[] = [];
  const probe = new KeeperProbe({ peers, client: k.client(), keys, logger, intervalMs: 60_000, pushTo: async (pos) => { pushed.push(pos); return true; } });
  await probe.probeNow();
  await probe.stop();
  assert.deepEqual(pushed, [2], 'only the refilled Keeper is pushed its share');
  assert.equal(staleReason(st(1, 2), 2, 1), undefined, 'a Keeper that does not say (older, SPIKE) is left to the periodic push');
});

test('probe: during a move, a Keeper lacks its new share unless it holds it pending or current', () => {
  assert.equal(lacksMoveShare(st(1, 1, 2), 2), false);
  assert.equal(lacksMoveShare(st(2, 1), 2), false);
  assert.equal(lacksMoveShare(st(1, 1), 2), true, 'restarted, refilled with the current share only');
  assert.equal(lacksMoveShare(st(null, null), 2), true);
});

/** A move paused right before its commit: the mover's own status calls wait for `release`. */
function pausedMove(k: FakeKeepers, keys: KeyState, store: MemoryStore): { m: SharingMover; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const base = k.client();
  const client = { ...base, contribute: base.contribute, status: async (url: string, ms?: number) => { await gate; return base.status(url, ms); } } as KeeperClient;
  const m = new SharingMover({ store, keys, client, logger, attempts: 2, initialBackoffMs: 1, maxBackoffMs: 2 });
  return { m, release };
}

function probeFor(k: FakeKeepers, keys: KeyState, peers: string[], m: SharingMover): KeeperProbe {
  const pusher = new SharePusher({ peers, client: k.client(), keys, logger, intervalMs: 60_000 });
  return new KeeperProbe({ peers, client: k.client(), keys, logger, intervalMs: 60_000, pushTo: (pos) => pusher.pushTo(pos), moving: () => m.inFlight() });
}

async function untilInFlight(m: SharingMover): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!m.inFlight() && Date.now() < deadline) await sleep(5);
  assert.ok(m.inFlight(), 'the move reached its pre-commit check');
}

test('FI-REHYDRATE-PENDING: a Keeper restarted empty inside a move gets its current AND pending shares from the probe; the move commits without a re-send of its own', async () => {
  const peers = urls(3);
  const { store, keys, k } = await bootstrapped(2, peers);
  const { m, release } = pausedMove(k, keys, store);
  const run = m.move('refresh', { threshold: 2, shares: 3, peers });
  await untilInFlight(m);
  k.slot(peers[2]!).clear(); // kill -9 of Keeper 3 after it acknowledged its pending share; it comes back empty
  await probeFor(k, keys, peers, m).probeNow();
  assert.deepEqual([k.slot(peers[2]!).get()?.epoch, k.slot(peers[2]!).getPending()?.epoch], [1, 2], 'current epoch 1 and pending epoch 2 again');
  const pendingSends = () => k.sent.filter((e) => e.url === peers[2] && e.epoch === 2).length;
  assert.equal(pendingSends(), 2, 'phase one, then the probe');
  release();
  const next = await run;
  assert.equal(next.epoch, 2);
  assert.equal(pendingSends(), 3, 'then only the commit message: the pre-commit check found the share held');
  assert.deepEqual(k.sharesAt(peers, 2).map((s) => s.id), [1, 2, 3]);
  assert.equal(m.inFlight(), undefined);
});

test('FI-REHYDRATE-PENDING: a Keeper only of the new list (a reshare) that restarted empty inside the move is probed too and gets its new share', async () => {
  const peers = urls(3);
  const four = urls(4);
  const { store, keys, k } = await bootstrapped(2, peers);
  const { m, release } = pausedMove(k, keys, store);
  const run = m.move('reshare', { threshold: 3, shares: 4, peers: four });
  await untilInFlight(m);
  k.slot(four[3]!).clear();
  await probeFor(k, keys, peers, m).probeNow();
  assert.equal(k.slot(four[3]!).get()?.epoch, 2, 'the new Keeper holds its share of the new sharing again');
  release();
  assert.equal((await run).shares, 4);
  assert.deepEqual(k.sharesAt(four, 2).map((s) => s.id), [1, 2, 3, 4]);
});

test('probe: no move in flight → nothing but the current share is pushed', async () => {
  const peers = urls(3);
  const { store, keys, k } = await bootstrapped(2, peers);
  const m = mover(store, keys, k);
  k.slot(peers[0]!).clear();
  await probeFor(k, keys, peers, m).probeNow();
  assert.deepEqual([k.slot(peers[0]!).get()?.epoch, k.slot(peers[0]!).getPending()], [1, undefined]);
  assert.deepEqual(k.sent.map((e) => e.epoch), [1]);
});

test('FI-19: a Keeper found empty (restarted) is one ERROR line per loss, however many rounds its push fails; another epoch is info', async () => {
  const peers = urls(3);
  const { keys, k } = await bootstrapped(2, peers);
  const cap = captureLogger();
  let accept = false;
  const probe = new KeeperProbe({ peers, client: k.client(), keys, logger: cap.logger, intervalMs: 60_000, pushTo: () => Promise.resolve(accept) });
  const errors = (): unknown[] => cap.lines().filter((l) => l['level'] === 'error').map((l) => l['keeperId']);
  await probe.probeNow();
  assert.deepEqual(errors(), [], 'every Keeper holds its share: no error');
  k.slot(peers[1]!).clear();
  for (let i = 0; i < 3; i++) await probe.probeNow();
  assert.deepEqual(errors(), [2], 'three rounds of failed pushes: one line');
  accept = true;
  await probe.probeNow();
  assert.deepEqual(errors(), [2]);
  k.slot(peers[1]!).clear();
  await probe.probeNow();
  assert.deepEqual(errors(), [2, 2], 'a second loss after the re-hydration: a second line');
});

test('FI-04: Keepers that stop answering are named once at WARN, the drop below the threshold once more; nothing per round; both cleared at info when they answer again; an error status counts as an answer', async () => {
  const peers = urls(3);
  const { keys, k } = await bootstrapped(2, peers);
  const cap = captureLogger();
  const base = k.client();
  let legacy = false; // Keeper 1 answers the status route with an error status (no status route)
  const client = { ...base, status: async (url: string, ms?: number) => {
    if (legacy && url === peers[0]) throw new KeeperCallError('keeper_bad_status', 404);
    return base.status(url, ms);
  } } as KeeperClient;
  const probe = new KeeperProbe({ peers, client, keys, logger: cap.logger, intervalMs: 60_000, pushTo: () => Promise.resolve(true) });
  const lines = (level: string): Array<Record<string, unknown>> => cap.lines().filter((l) => l['level'] === level && l['msg'] !== 'keeper status probe failed');
  await probe.probeNow();
  assert.deepEqual(lines('warn'), [], 'all answer: nothing');

  k.down.add(peers[1]!);
  await probe.probeNow();
  assert.deepEqual(lines('warn').map((l) => [l['keeperId'], l['answering'], l['threshold'], l['alarm']]), [[2, 2, 2, undefined]], 'one Keeper down: named once, still at the threshold');
  k.down.add(peers[2]!);
  for (let i = 0; i < 5; i++) await probe.probeNow();
  const warned = lines('warn');
  assert.equal(warned.length, 3, '5 rounds below the threshold add 2 lines, not 10');
  assert.deepEqual([warned[1]!['keeperId'], warned[2]!['alarm'], warned[2]!['answering'], warned[2]!['keepers']], [3, 'keepers_below_threshold', 1, 3]);

  k.down.clear();
  legacy = true;
  await probe.probeNow();
  await probe.probeNow();
  assert.equal(lines('warn').length, 3, 'an error status is an answer: no new warning');
  const back = lines('info').filter((l) => /again/.test(String(l['msg'])));
  assert.deepEqual(back.map((l) => l['keeperId'] ?? 'threshold'), [2, 3, 'threshold']);
  // A flapping Keeper: its WARN line is throttled (one per 30 s, then a count).
  for (let i = 0; i < 3; i++) {
    k.down.add(peers[1]!);
    await probe.probeNow();
    k.down.clear();
    await probe.probeNow();
  }
  assert.equal(lines('warn').length, 3, 'flapping adds no WARN line within the throttle interval');
  await probe.stop();
});
