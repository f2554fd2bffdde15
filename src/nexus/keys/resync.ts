/**
 * Several Nexus on one database: when another instance moved the sharing (share refresh,
 * Keeper set change), this instance still holds the old sharing in memory. Before each
 * re-push it compares the stored sharing's epoch with its own; when the store is ahead it
 * fetches `t` shares of the stored sharing from the Keepers (current or still-pending
 * part), verifies each against the stored commitments, checks that they rebuild the SAME
 * root key it holds, and switches to that sharing. Until then it pushes nothing (an old
 * epoch must never go out over a newer one). Values are wiped after use; never logged.
 */
import type { AuditEvents } from '../audit.js';
import { combineShares, wipeShare, type Share } from '../../crypto/index.js';
import { type Logger } from '../../lib/index.js';
import type { KeeperClient } from '../../keeper/index.js';
import type { Store } from '../../store/index.js';
import { pollList, verifyAnswer, type KnownSharings } from './recovery-verify.js';
import { loadSharing, trustedSharing } from './sharing.js';
import type { KeyState } from './state.js';

export interface ResyncOptions {
  store: Store;
  keys: KeyState;
  client: KeeperClient;
  peers: readonly string[];
  logger: Logger;
  audit?: AuditEvents;
}

/** The record epoch whose integrity failure was last logged, per key state. */
const untrustedSaid = new WeakMap<KeyState, number>();

/** `current`: nothing to do; `updated`: switched to the stored sharing; `failed`: store ahead, not enough shares yet. */
export async function resyncSharing(o: ResyncOptions): Promise<'current' | 'updated' | 'failed'> {
  const held = o.keys.sharing();
  if (!o.keys.isReady() || !held) return 'current';
  const stored = await loadSharing(o.store);
  if (!stored || stored.epoch <= held.epoch) return 'current';
  const known: KnownSharings = { stored, pending: undefined, configured: { threshold: stored.threshold, shares: stored.shares, peers: o.peers } };
  const got = new Map<number, Share>();
  await Promise.all(pollList(known).map(async (url) => {
    try {
      const { verified } = verifyAnswer(url, await o.client.fetchShare(url), known);
      for (const v of verified) {
        if (got.has(v.share.id)) wipeShare(v.share);
        else got.set(v.share.id, v.share);
      }
    } catch { /* an unreachable Keeper: others may do */ }
  }));
  const shares = [...got.values()];
  try {
    if (shares.length < stored.threshold) {
      o.logger.warn({ epoch: stored.epoch, have: shares.length, need: stored.threshold }, 'another Nexus moved the sharing; not enough Keeper shares of it yet, pushing nothing');
      return 'failed';
    }
    const basis = shares.slice(0, stored.threshold);
    const root = combineShares(basis, stored.threshold);
    const same = root.equals(o.keys.root());
    root.destroy();
    if (!same) {
      o.logger.error({ epoch: stored.epoch }, 'the stored sharing does not rebuild this Nexus\'s root key; pushing nothing');
      return 'failed';
    }
    if (trustedSharing(stored, o.keys.root(), { configuredPeers: o.peers }) !== 'yes') {
      // Asked before every push (the probe's included): said once per record epoch.
      if (untrustedSaid.get(o.keys) !== stored.epoch) {
        untrustedSaid.set(o.keys, stored.epoch);
        o.logger.error({ epoch: stored.epoch, alarm: 'system_record_damaged', record: 'sharing' }, 'the stored sharing record fails its integrity check (changed outside Nexus?); pushing nothing');
      }
      return 'failed';
    }
    o.keys.replaceSharing(basis, stored);
    o.logger.info({ from: held.epoch, to: stored.epoch }, 'switched to the sharing another Nexus moved to');
    o.audit?.event('sharing.resynced', { from: held.epoch, to: stored.epoch });
    return 'updated';
  } finally {
    shares.forEach(wipeShare);
  }
}
