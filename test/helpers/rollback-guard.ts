/**
 * Test support (not used by Nexus itself): a rollback guard (src/nexus/anchor/guard.ts) over a
 * fake store anchor and fake Keepers whose anchors follow what is pushed to them, for the
 * guard's unit tests.
 */
import { Writable } from 'node:stream';
import type { Commitments } from '../../src/crypto/index.js';
import { createLogger } from '../../src/lib/log.js';
import type { KeeperClient, KeeperStatus } from '../../src/keeper/index.js';
import { anchorCounter, type AnchorSealer, type CommitAnchor } from '../../src/store/index.js';
import { KeyState } from '../../src/nexus/keys/state.js';
import { AnchorKey } from '../../src/nexus/anchor/mac.js';
import { RollbackGuard } from '../../src/nexus/anchor/guard.js';

export function guardFixture(storeCounter: bigint | null, initialKeeperCounters: (bigint | null)[], onStatus?: (bump: (c: bigint) => void) => void, silentUntil: number[] = [],
  lists?: { configured: string[]; stored: string[] }, rootMovedOn?: () => Promise<boolean>, extra: { keeperEpoch?: number; recheckMs?: number; checkWindowMs?: number; onAcceptedElsewhere?: () => Promise<void> } = {}) {
  let keeperCounters = initialKeeperCounters;
  const keys = new KeyState();
  keys.installEphemeral();
  let keeperEpoch = extra.keeperEpoch ?? 1;
  let readDelayMs = 0;
  if (!lists && rootMovedOn) keys.replaceSharing([], { epoch: 1, threshold: 2, shares: 3, commitments: null as unknown as Commitments, peers: keeperCounters.map((_, i) => `k${i + 1}`) });
  if (lists) keys.replaceSharing([], { epoch: 1, threshold: 1, shares: lists.stored.length, commitments: null as unknown as Commitments, peers: lists.stored });
  const key = new AnchorKey(keys.root());
  let stored: Uint8Array | null = storeCounter === null ? null : key.seal(storeCounter);
  let armed: AnchorSealer | undefined;
  let keeperKey = key;
  const events: [string, unknown][] = [];
  const pushed: string[] = [];
  const anchor: CommitAnchor = {
    arm: (s) => { armed = s; }, disarm: () => { armed = undefined; }, onWrite: undefined,
    // A slow answer (readDelayMs): the value as it was when the read was issued.
    read: async () => {
      const v = stored;
      if (readDelayMs > 0) await new Promise((r) => setTimeout(r, readDelayMs));
      return v;
    },
    current: async () => stored,
    advance: async (min) => {
      if (!armed) throw new Error('not armed');
      stored = armed(stored, min);
      return stored;
    },
  };
  const client = {
    status: async (url: string): Promise<KeeperStatus> => {
      onStatus?.((c) => { stored = key.seal(c); });
      const i = Number(url.slice(1)) - 1;
      if (Date.now() < (silentUntil[i] ?? 0)) throw new Error('keeper_unreachable');
      const c = keeperCounters[i];
      return { epoch: keeperEpoch, id: null, pending: null, anchor: c === null || c === undefined ? undefined : keeperKey.seal(c) };
    },
    putAnchor: async (url: string, record: Uint8Array) => {
      pushed.push(url);
      const i = Number(url.slice(1)) - 1;
      keeperCounters = keeperCounters.map((c, j) => (j === i ? (key.open(record) ?? null) : c));
    },
  } as unknown as KeeperClient;
  const logger = createLogger({ component: 't', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const guard = new RollbackGuard({
    anchor, keys, peers: lists?.configured ?? keeperCounters.map((_, i) => `k${i + 1}`), client, logger,
    audit: { event: (name, fields) => { events.push([name, fields]); } }, debounceMs: 10,
    ...(rootMovedOn ? { rootMovedOn, onStale: () => { stale++; } } : {}),
    ...(extra.recheckMs !== undefined ? { recheckMs: extra.recheckMs } : {}),
    ...(extra.checkWindowMs !== undefined ? { checkWindowMs: extra.checkWindowMs } : {}),
    ...(extra.onAcceptedElsewhere ? { onAcceptedElsewhere: extra.onAcceptedElsewhere } : {}),
  });
  let stale = 0;
  return {
    guard, keys, events, pushed, armed: () => armed !== undefined, staleCalls: () => stale,
    /** The Keepers' anchors are sealed under `k` from now on (pushed by a process holding another root). */
    keepersSealWith: (k: AnchorKey) => { keeperKey = k; }, keepersCounters: (cs: (bigint | null)[]) => { keeperCounters = cs; }, keepers: () => keeperCounters,
    /** The Keepers move to another sharing epoch (a rotation elsewhere pushed and promoted it). */
    keepersAt: (epoch: number) => { keeperEpoch = epoch; }, stored: () => anchorCounter(stored),
    /** The database is rewritten behind Nexus's back (a restore, a planted record). */
    replace: (record: Uint8Array | null) => { stored = record; },
    /** Store reads answer this late from now on, with the value of when they were issued. */
    slowReads: (ms: number) => { readDelayMs = ms; },
    /** One write's anchor step, as the store does it. */
    write: () => { if (armed) stored = armed(stored, 0n); },
    seal: (c: bigint) => key.seal(c),
    done: async () => { await guard.stop(); key.destroy(); keys.clear(); },
  };
}
