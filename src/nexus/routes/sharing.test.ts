/**
 * `POST /v1/operator/reshare` in-process (real router, guards and sharing move; Keepers as
 * in-memory slots): superuser only; nothing to change when the stored sharing matches the
 * settings; a move to the configured Keepers, shares and threshold otherwise; a Keeper down
 * → 503 and nothing changes; a move already running → 409.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRouteHarness, type RouteHarness } from '../../../test/helpers/route-harness.js';
import { bootstrapped, logger, type FakeKeepers } from '../../../test/helpers/fake-keepers.js';
import type { KeeperClient } from '../../keeper/index.js';
import { PATHS, type WireShare } from '../../protocol/index.js';
import type { KeyState } from '../keys/state.js';
import { SharingMover } from '../keys/move.js';
import { loadSharing } from '../keys/sharing.js';
import type { MemoryStore } from '../../store/memory.js';
import { sharingRoutes } from './sharing.js';

const SUPERUSER = 'spiffe://spike.ist/spike/pilot/role/superuser';
const RECOVER = 'spiffe://spike.ist/spike/pilot/role/recover';
const FIVE = ['https://k1:8443', 'https://k2:8443', 'https://k3:8443', 'https://k4:8443', 'https://k5:8443'];

/** A harness whose Nexus is configured for `n` of FIVE with threshold `t`, over a bootstrapped 2-of-3 on the first three. */
async function harness(n: number, t: number): Promise<{ h: RouteHarness; k: FakeKeepers; keys: KeyState; store: MemoryStore; m: SharingMover }> {
  const h = await startRouteHarness({
    modules: [sharingRoutes],
    env: { SPIKE_NEXUS_SHAMIR_SHARES: String(n), SPIKE_NEXUS_SHAMIR_THRESHOLD: String(t), SPIKE_NEXUS_KEEPER_PEERS: FIVE.slice(0, n).join(',') },
  });
  const { store, keys, k } = await bootstrapped(2, h.ctx.cfg.keeperPeers.length === 3 ? [...h.ctx.cfg.keeperPeers] : FIVE.slice(0, 3));
  // Keeper calls wait while `hold` is set (a move in flight for the 409 case).
  const base = k.client();
  const client = { ...base, contribute: async (url: string, w: WireShare) => { await hold; return base.contribute(url, w); } } as KeeperClient;
  const m = new SharingMover({ store, keys, client, logger, attempts: 2, initialBackoffMs: 1, maxBackoffMs: 2 });
  return { h, k, keys, store, m };
}

let hold: Promise<void> = Promise.resolve();

const body = (r: { json: unknown }): Record<string, unknown> => r.json as Record<string, unknown>;

test('reshare: superuser only; the memory backend (no mover) → 400 memory_backend', async () => {
  const { h } = await harness(3, 2);
  try {
    const r = await h.post(PATHS.reshare, {}, RECOVER);
    assert.ok(r.status === 401 || r.status === 403, r.body);
    const none = await h.post(PATHS.reshare, {}, null);
    assert.ok(none.status === 401 || none.status === 403, none.body);
    const mem = await h.post(PATHS.reshare, {}, SUPERUSER);
    assert.equal(mem.status, 400, mem.body);
    assert.equal(body(mem)['err'], 'api_bad_request');
    assert.match(mem.body, /memory backend/);
  } finally {
    await h.close();
  }
});

test('reshare: the stored sharing already matches the settings → {changed:false}, no Keeper is contacted, the epoch stays', async () => {
  const { h, k, keys, store, m } = await harness(3, 2);
  try {
    Object.assign(h.ctx, { keys, mover: m });
    const r = await h.post(PATHS.reshare, {}, SUPERUSER);
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json, { changed: false, epoch: 1, threshold: 2, shares: 3 });
    assert.equal(k.sent.length, 0);
    assert.equal((await loadSharing(store))?.epoch, 1);
    assert.match(h.logs(), /nothing to change/);
  } finally {
    await h.close();
  }
});

test('reshare: 2-of-3 stored, 3-of-5 configured → the move runs (a new epoch, every configured Keeper holds its share); a Keeper down → 503 and nothing changes; a move running → 409', async () => {
  const { h, k, keys, store, m } = await harness(5, 3);
  try {
    Object.assign(h.ctx, { keys, mover: m });
    k.down.add(FIVE[4]!);
    const down = await h.post(PATHS.reshare, {}, SUPERUSER);
    assert.equal(down.status, 503, down.body);
    assert.equal(body(down)['err'], 'state_not_ready');
    assert.equal((await loadSharing(store))?.epoch, 1, 'the stored sharing stays');
    k.down.clear();

    let release!: () => void;
    hold = new Promise<void>((r) => { release = r; });
    const running = m.move('refresh', { threshold: 2, shares: 3, peers: FIVE.slice(0, 3) }); // holds the one-move lock
    const busy = await h.post(PATHS.reshare, {}, SUPERUSER);
    assert.equal(busy.status, 409, busy.body);
    assert.equal(body(busy)['err'], 'api_conflict');
    assert.match(busy.body, /move_in_progress|already running/);
    release();
    assert.equal((await running).epoch, 3, 'epoch 2 went to the abandoned move');

    const ok = await h.post(PATHS.reshare, {}, SUPERUSER);
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(ok.json, { changed: true, epoch: 4, threshold: 3, shares: 5 });
    assert.deepEqual(k.sharesAt(FIVE, 4).map((s) => s.id), [1, 2, 3, 4, 5]);
    assert.deepEqual((await loadSharing(store))?.peers, FIVE);
    assert.match(h.logs(), /reshare requested by the operator/);

    const again = await h.post(PATHS.reshare, {}, SUPERUSER);
    assert.equal(body(again)['changed'], false, 'a second run has nothing to change');
  } finally {
    await h.close();
  }
});
