/**
 * Test support (not used by Nexus itself): a rollback guard (src/nexus/anchor/guard.ts) over a
 * fake store anchor and fake Keepers whose anchors follow what is pushed to them, for the
 * guard's unit tests.
 */
import { Writable } from 'node:stream';
import assert from 'node:assert/strict';
import type { Commitments } from '../../src/crypto/index.js';
import { createLogger } from '../../src/lib/log.js';
import type { KeeperClient, KeeperStatus } from '../../src/keeper/index.js';
import { anchorCounter, anchorNonce, type AnchorSealer, type CommitAnchor } from '../../src/store/index.js';
import { KeyState } from '../../src/nexus/keys/state.js';
import { AnchorKey } from '../../src/nexus/anchor/mac.js';
import { RollbackGuard } from '../../src/nexus/anchor/guard.js';

export function guardFixture(storeCounter: bigint | null, initialKeeperCounters: (bigint | null)[], onStatus?: (bump: (c: bigint) => void) => void, silentUntil: number[] = [],
  lists?: { configured: string[]; stored: string[] }, rootMovedOn?: () => Promise<boolean>, extra: { keeperEpoch?: number; recheckMs?: number; checkWindowMs?: number; onAcceptedElsewhere?: () => Promise<void> } = {}) {
  let keeperCounters = initialKeeperCounters;
  // What each Keeper holds: records as they were pushed (or a store record at that counter).
  let keeperRecords = new Map<number, Uint8Array>();
  const keys = new KeyState();
  keys.installEphemeral();
  let keeperEpoch = extra.keeperEpoch ?? 1;
  let readDelayMs = 0;
  /** History reads that fail from now on (the store does not answer). */
  let failRecorded = 0;
  if (!lists && rootMovedOn) keys.replaceSharing([], { epoch: 1, threshold: 2, shares: 3, commitments: null as unknown as Commitments, peers: keeperCounters.map((_, i) => `k${i + 1}`) });
  if (lists) keys.replaceSharing([], { epoch: 1, threshold: 1, shares: lists.stored.length, commitments: null as unknown as Commitments, peers: lists.stored });
  const key = new AnchorKey(keys.root());
  // The store's anchor record and its history by counter (src/store/anchor.ts).
  const history = new Map<bigint, Uint8Array>();
  let stored: Uint8Array | null = null;
  const put = (record: Uint8Array | null): Uint8Array | null => {
    stored = record;
    const c = anchorCounter(record);
    if (record !== null && c !== undefined) history.set(c, record);
    return record;
  };
  put(storeCounter === null ? null : key.seal(storeCounter));
  let armed: AnchorSealer | undefined;
  /** The store tells the chain each record it committed (as sqlite does after COMMIT). */
  let noteCommitted: ((record: Uint8Array) => void) | undefined;
  const commit = (record: Uint8Array): Uint8Array => {
    put(record);
    noteCommitted?.(record);
    return record;
  };
  let keeperKey = key;
  const events: [string, unknown][] = [];
  const pushed: string[] = [];
  const anchor: CommitAnchor = {
    arm: (s, committed) => { armed = s; noteCommitted = committed; }, disarm: () => { armed = undefined; noteCommitted = undefined; }, onWrite: undefined,
    // A slow answer (readDelayMs): the value as it was when the read was issued.
    read: async () => {
      const v = stored;
      if (readDelayMs > 0) await new Promise((r) => setTimeout(r, readDelayMs));
      return v;
    },
    current: async () => stored,
    advance: async (min) => {
      if (!armed) throw new Error('not armed');
      return commit(armed(stored, min));
    },
    recorded: async (counters) => failRecorded > 0 && failRecorded-- > 0 ? Promise.reject(new Error('store_unavailable')) : new Map(counters.flatMap((c) => { const n = anchorNonce(history.get(c)); return n ? [[c, Uint8Array.from(n)] as const] : []; })),
  };
  const client = {
    status: async (url: string): Promise<KeeperStatus> => {
      onStatus?.((c) => { put(history.get(c) ?? key.seal(c)); });
      const i = Number(url.slice(1)) - 1;
      if (Date.now() < (silentUntil[i] ?? 0)) throw new Error('keeper_unreachable');
      const c = keeperCounters[i];
      return { epoch: keeperEpoch, id: null, pending: null, anchor: c === null || c === undefined ? undefined : keeperRecord(i, c) };
    },
    putAnchor: async (url: string, record: Uint8Array) => {
      pushed.push(url);
      const i = Number(url.slice(1)) - 1;
      keeperCounters = keeperCounters.map((c, j) => (j === i ? (key.open(record) ?? null) : c));
      keeperRecords.set(i, record);
    },
  } as unknown as KeeperClient;
  /** Keeper i's record at counter c: the one pushed to it, else the store's at c (it came from there), else one sealed now. */
  const keeperRecord = (i: number, c: bigint): Uint8Array => {
    const held = keeperRecords.get(i);
    if (held !== undefined && keeperKey.open(held) === c) return held;
    const h = history.get(c);
    const r = h !== undefined && keeperKey.open(h) === c ? h : keeperKey.seal(c);
    keeperRecords.set(i, r);
    return r;
  };
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
    /** The Keepers hold exactly these records (pushed by another process). */
    keepersHold: (records: (Uint8Array | null)[]) => {
      keeperCounters = records.map((r) => (r === null ? null : (keeperKey.open(r) ?? null)));
      keeperRecords = new Map(records.flatMap((r, i) => (r === null ? [] : [[i, r] as const])));
    },
    /** What Keeper i (0-based) holds. */
    keeperHolds: (i: number) => keeperRecords.get(i),
    /** The Keepers move to another sharing epoch (a rotation elsewhere pushed and promoted it). */
    keepersAt: (epoch: number) => { keeperEpoch = epoch; }, stored: () => anchorCounter(stored),
    /**
     * The database is rewritten behind Nexus's back (a restore, a planted record): an older copy
     * holds no history above its record's counter.
     */
    replace: (record: Uint8Array | null) => {
      const c = anchorCounter(record) ?? -1n;
      for (const k of [...history.keys()]) if (k > c) history.delete(k);
      put(record);
    },
    /** The record the store's history holds at `c`. */
    recordAt: (c: bigint) => history.get(c),
    /** The next `n` history reads fail (the store does not answer). */
    failHistoryReads: (n: number) => { failRecorded = n; },
    /** Store reads answer this late from now on, with the value of when they were issued. */
    slowReads: (ms: number) => { readDelayMs = ms; },
    /** One write's anchor step, as the store does it. */
    write: () => { if (armed) commit(armed(stored, 0n)); },
    /** The record of the store's timeline at `c`: the one its history holds, else one sealed now. */
    seal: (c: bigint) => history.get(c) ?? key.seal(c),
    /** A record at `c` sealed now: of another history than the store's when it holds `c`. */
    sealFresh: (c: bigint) => key.seal(c),
    done: async () => { await guard.stop(); key.destroy(); keys.clear(); },
  };
}

/** A Keeper status answer holding `anchor`. */
export const anchorStatus = (anchor: Uint8Array): KeeperStatus => ({ epoch: 1, id: null, pending: null, anchor });
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Waits (up to 5 s) for `cond`; fails naming `what`. */
export async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await sleep(10);
  assert.ok(cond(), what);
}
