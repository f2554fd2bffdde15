/**
 * Test support (not used by Nexus itself): Keepers as in-memory share slots with the real
 * slot rules behind a fake KeeperClient (no network), and a bootstrapped Nexus key state
 * over a memory store (or a given one), for the sharing-move, probe and reshare unit tests.
 */
import { Writable } from 'node:stream';
import assert from 'node:assert/strict';
import { combineShares, RootKey, splitSecret, wipeShare, type Share } from '../../src/crypto/index.js';
import { createLogger } from '../../src/lib/log.js';
import { KeeperCallError, KeeperSlotError, ShareSlot, type KeeperClient } from '../../src/keeper/index.js';
import type { WireShare } from '../../src/protocol/index.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { Store } from '../../src/store/index.js';
import { SharingMover, type MoveStep } from '../../src/nexus/keys/move.js';
import { adoptKey } from '../../src/nexus/keys/sharing.js';
import { KeyState } from '../../src/nexus/keys/state.js';

export const logger = createLogger({ component: 't', level: 'silent', destination: new Writable({ write(_c, _e, cb) { cb(); } }) });
export const urls = (n: number, from = 1): string[] => Array.from({ length: n }, (_, i) => `https://k${from + i}`);

/** Keepers as slots keyed by URL; `down` Keepers are unreachable. */
export class FakeKeepers {
  readonly slots = new Map<string, ShareSlot>();
  readonly down = new Set<string>();
  /** Every share sent: which Keeper got which id of which epoch. */
  readonly sent: { url: string; epoch: number | undefined; id: number | undefined }[] = [];
  /** The configured Keepers (KeeperClient's `shareRecipients`); unset: every URL. */
  recipients: ReadonlySet<string> | undefined;
  slot(url: string): ShareSlot {
    let s = this.slots.get(url);
    if (!s) this.slots.set(url, s = new ShareSlot());
    return s;
  }
  client(): KeeperClient {
    const may = (url: string): boolean => this.recipients === undefined || this.recipients.has(url);
    return {
      mayReceiveShares: may,
      contribute: async (url: string, w: WireShare) => {
        if (!may(url)) throw new KeeperCallError('keeper_not_configured');
        if (this.down.has(url)) throw new KeeperCallError('keeper_unreachable');
        this.sent.push({ url, epoch: w.epoch, id: w.id });
        try {
          this.slot(url).contribute('nexus', { value: w.value, id: w.id, epoch: w.epoch, commitments: w.commitments, pending: w.pending === true });
        } catch (e) {
          if (e instanceof KeeperSlotError) throw new KeeperCallError('keeper_bad_status', e.status);
          throw e;
        }
      },
      status: async (url: string) => {
        if (this.down.has(url)) throw new KeeperCallError('keeper_unreachable');
        const h = this.slot(url).get();
        h?.value.fill(0);
        const p = this.slot(url).getPending();
        p?.value.fill(0);
        return { epoch: h?.epoch ?? null, id: h?.id ?? null, pending: p?.epoch ?? null, ...(h ? { confirmed: this.slot(url).isConfirmed() } : {}), anchor: undefined };
      },
      fetchShare: async (url: string): Promise<WireShare> => {
        if (this.down.has(url)) throw new KeeperCallError('keeper_unreachable');
        const h = this.slot(url).get();
        if (!h) throw new KeeperCallError('keeper_bad_status', 400);
        const p = this.slot(url).getPending();
        return { ...h, ...(p ? { pendingShare: { ...p } } : {}) };
      },
    } as unknown as KeeperClient;
  }
  /** Every Keeper in `list` holds one share (no pending) of `epoch`; returns them. */
  sharesAt(list: readonly string[], epoch: number): Share[] {
    return list.map((u) => {
      const h = this.slot(u).get();
      assert.equal(h?.epoch, epoch, `${u} epoch`);
      assert.equal(this.slot(u).getPending(), undefined, `${u} pending`);
      return { id: h.id!, value: h.value };
    });
  }
}

/** A bootstrapped Nexus: root key, epoch-1 sharing t-of-n stored and pushed to the Keepers. */
export async function bootstrapped<S extends Store = MemoryStore>(t: number, peers: string[], given?: S): Promise<{ root: RootKey; store: S; keys: KeyState; k: FakeKeepers }> {
  const root = RootKey.generate();
  const split = splitSecret(root, t, peers.length);
  const store = given ?? (new MemoryStore() as Store as S);
  const keys = new KeyState();
  await adoptKey(store, keys, RootKey.fromBytes(root.bytes()), split.shares.slice(0, t), { epoch: 1, threshold: t, shares: peers.length, commitments: split.commitments, peers });
  const k = new FakeKeepers();
  peers.forEach((u, i) => k.slot(u).contribute('nexus', { value: split.shares[i]!.value, id: i + 1, epoch: 1, commitments: split.commitments }));
  split.shares.forEach(wipeShare);
  return { root, store, keys, k };
}

export function mover(store: Store, keys: KeyState, k: FakeKeepers, onStep?: (s: MoveStep) => void | Promise<void>): SharingMover {
  return new SharingMover({ store, keys, client: k.client(), logger, attempts: 2, initialBackoffMs: 1, maxBackoffMs: 2, ...(onStep ? { onStep } : {}) });
}

export function assertCombines(shares: Share[], t: number, root: RootKey): void {
  const key = combineShares(shares.slice(0, t), t);
  assert.ok(key.equals(root), 'the shares rebuild the same root key');
  key.destroy();
}

