/**
 * Which sharing a Keeper's answer belongs to, verified (D6) before any use: the Keeper's
 * current share and, during a sharing move, its pending share are each checked against the
 * stored current sharing or the stored pending sharing (by epoch, then against that
 * sharing's Feldman commitments). On a first start (no record yet) only Bootstrap's
 * sharing exists and the Keeper's own commitments are used, as before.
 *
 * Share ids: a Keeper's position may differ between the old and new Keeper lists of a
 * move, so the id a Keeper states is accepted when it is one of that Keeper's positions in
 * any known list (configured, stored current, stored pending); a SPIKE Keeper states no id
 * and gets its configured position. A wrong id cannot pass: the share must still verify
 * against the commitments at that id.
 */
import { wipeShare, type Share } from '../../crypto/index.js';
import type { WireShare } from '../../protocol/index.js';
import { BOOTSTRAP_EPOCH } from '../../keeper/index.js';
import type { PendingSharing } from './pending.js';
import type { SharingInfo } from './state.js';

export interface KnownSharings {
  stored: SharingInfo | undefined;
  pending: PendingSharing | undefined;
  configured: { threshold: number; shares: number; peers: readonly string[] };
}

export interface VerifiedShare {
  sharing: SharingInfo;
  share: Share;
}

/** Every Keeper URL to poll: the configured list, then Keepers only the stored records name. */
export function pollList(k: KnownSharings): string[] {
  const out = [...k.configured.peers];
  for (const url of [...(k.stored?.peers ?? []), ...(k.pending?.sharing.peers ?? [])]) if (!out.includes(url)) out.push(url);
  return out;
}

function positionsOf(url: string, k: KnownSharings): Set<number> {
  const ids = new Set<number>();
  for (const list of [k.configured.peers, k.stored?.peers ?? [], k.pending?.sharing.peers ?? []]) {
    list.forEach((u, i) => { if (u === url) ids.add(i + 1); });
  }
  return ids;
}

function verifyOne(url: string, w: WireShare, k: KnownSharings): VerifiedShare | string {
  const known = positionsOf(url, k);
  const id = w.id ?? k.configured.peers.indexOf(url) + 1;
  if (!known.has(id)) return 'share_id_mismatch';
  const share: Share = { id, value: w.value };
  const epoch = w.epoch ?? BOOTSTRAP_EPOCH;
  const { stored, pending, configured } = k;
  let sharing: SharingInfo;
  if (stored) {
    // Only the stored sharings' epochs count; a Keeper holding any other epoch (e.g. one
    // a Bootstrap identity gave it after a restart) is stale, and the re-push overwrites it.
    if (epoch === stored.epoch) sharing = stored;
    else if (pending && epoch === pending.sharing.epoch) sharing = pending.sharing;
    else return 'stale_epoch';
    if (!sharing.commitments.verifyShare(share)) return 'share_unverified';
  } else {
    if (epoch !== BOOTSTRAP_EPOCH) return 'unexpected_epoch'; // no record yet: only Bootstrap's sharing exists
    if (!w.commitments) return 'no_commitments';
    if (w.commitments.threshold !== configured.threshold) return 'threshold_mismatch';
    if (!w.commitments.verifyShare(share)) return 'share_unverified';
    sharing = { epoch, threshold: configured.threshold, shares: configured.shares, commitments: w.commitments, peers: [...configured.peers] };
  }
  return { sharing, share };
}

/**
 * Verifies a Keeper's current and pending shares. Returns the verified ones (their values
 * now owned by the caller) and the first fault; every rejected value is wiped.
 */
export function verifyAnswer(url: string, w: WireShare, k: KnownSharings): { verified: VerifiedShare[]; fault: string | undefined } {
  const verified: VerifiedShare[] = [];
  let fault: string | undefined;
  for (const part of w.pendingShare ? [w, w.pendingShare] : [w]) {
    const r = verifyOne(url, part, k);
    if (typeof r === 'string') {
      fault ??= r;
      wipeShare({ id: 0, value: part.value });
    } else verified.push(r);
  }
  return { verified, fault };
}
