/**
 * Recovery's verified Keeper shares (recovery.ts), grouped by the sharing they verified
 * against (its commitments' digest), and the step that rebuilds the root key from the first
 * group with `threshold` of them and hands it to `adoptKey` (key check, sharing record).
 * A sharing move's pending sharing is tried first (finishing a move beats abandoning it);
 * a group whose shares do not combine, or whose key the store rejects, is wiped and dropped.
 * Shares are kept across passes (a verified share cannot go bad) and zeroed by `wipe`.
 */
import type { AuditEvents } from '../audit.js';
import { combineShares, wipeShare, type Share, type Commitments } from '../../crypto/index.js';
import { errInfo, type Logger } from '../../lib/index.js';
import type { Store } from '../../store/index.js';
import type { WireShare } from '../../protocol/index.js';
import { adoptKey } from './sharing.js';
import { settleMove } from './pending.js';
import { verifyAnswer, type KnownSharings } from './recovery-verify.js';
import type { KeyState, SharingInfo } from './state.js';

export interface ShareGroup {
  sharing: SharingInfo;
  shares: Map<number, Share>;
}

function digestHex(c: Commitments): string {
  return Buffer.from(c.digest()).toString('hex');
}

export class VerifiedShares {
  readonly #o: { store: Store; keys: KeyState; logger: Logger; audit?: AuditEvents; acceptUntaggedSharing?: boolean };
  readonly #groups = new Map<string, ShareGroup>();

  constructor(o: { store: Store; keys: KeyState; logger: Logger; audit?: AuditEvents; acceptUntaggedSharing?: boolean }) {
    this.#o = o;
  }

  /** The group with the most shares (for the "not ready" report), or undefined. */
  best(): ShareGroup | undefined {
    return [...this.#groups.values()].reduce<ShareGroup | undefined>((b, g) => (b === undefined || g.shares.size > b.shares.size ? g : b), undefined);
  }

  /**
   * Verifies one Keeper's answer (D6) and files its shares under their sharings (true); never
   * throws. `late`: the key is in already (or recovery stopped): nothing is kept.
   */
  file(pos: number, keeper: string, w: WireShare, known: KnownSharings, late: boolean): boolean {
    const { logger } = this.#o;
    if (late) {
      // A late answer after the key is in: not needed; still report a Keeper serving a
      // share that does not belong to the current sharing (D6), then wipe it.
      const current = this.#o.keys.sharing();
      const share: Share = { id: w.id ?? pos, value: w.value };
      if (current && !current.commitments.verifyShare(share) && w.epoch === current.epoch) {
        logger.warn({ keeper, keeperId: pos, reason: 'share_unverified' }, 'faulty keeper: share skipped');
      }
      wipeShare(share);
      if (w.pendingShare) wipeShare({ id: 0, value: w.pendingShare.value });
      return true;
    }
    const { verified, fault } = verifyAnswer(keeper, w, known);
    if (verified.length === 0) {
      logger.warn({ keeper, keeperId: pos, reason: fault }, 'faulty keeper: share skipped');
      return false;
    }
    for (const { sharing, share } of verified) {
      const key = digestHex(sharing.commitments);
      let g = this.#groups.get(key);
      if (!g) {
        g = { sharing, shares: new Map() };
        this.#groups.set(key, g);
      }
      const old = g.shares.get(share.id);
      if (old) wipeShare(old);
      g.shares.set(share.id, share);
    }
    return true;
  }

  /**
   * Rebuilds and adopts the key from the first sharing with enough verified shares (`known`:
   * what the pass read from the store); true once a key is installed.
   */
  async combine(known: KnownSharings | undefined): Promise<boolean> {
    const { keys, logger, store } = this.#o;
    if (keys.isReady()) return true;
    // A sharing move's pending sharing first: finishing a move beats abandoning it.
    const pendingKey = known?.pending ? digestHex(known.pending.sharing.commitments) : undefined;
    const order = [...this.#groups].sort(([a], [b]) => Number(b === pendingKey) - Number(a === pendingKey));
    for (const [key, g] of order) {
      // The stored sharing's threshold wins over the configured one (a changed
      // SPIKE_NEXUS_SHAMIR_THRESHOLD must not combine too few shares).
      const t = g.sharing.threshold;
      if (g.shares.size < t) continue;
      // Copies: a Keeper answering again while the adoption awaits the store replaces (and
      // wipes) its entry in `g.shares`; the basis handed to the key state must not change.
      const basis = [...g.shares.values()].slice(0, t).map((s) => ({ id: s.id, value: Uint8Array.from(s.value) }));
      let root;
      try {
        root = combineShares(basis, t);
      } catch (err) {
        logger.error({ err: errInfo(err) }, 'verified shares do not combine; discarding that sharing');
        for (const s of [...g.shares.values(), ...basis]) wipeShare(s);
        this.#groups.delete(key);
        continue;
      }
      const fromPending = known?.pending !== undefined && digestHex(known.pending.sharing.commitments) === key;
      try {
        await adoptKey(store, keys, root, basis, g.sharing, {
          trust: { configuredPeers: known?.configured.peers ?? [], acceptUntagged: this.#o.acceptUntaggedSharing === true },
          ...(fromPending && known.stored ? { storedMayBe: known.stored.commitments } : {}),
        });
      } catch (err) {
        root.destroy();
        logger.error({ err: errInfo(err) }, 'rebuilt key rejected; discarding that sharing');
        for (const s of g.shares.values()) wipeShare(s);
        this.#groups.delete(key);
        continue;
      } finally {
        for (const s of basis) wipeShare(s);
      }
      logger.info({ keepers: g.shares.size, epoch: g.sharing.epoch }, 'root key recovered from keepers');
      this.#o.audit?.event('key.recovered', { keepers: g.shares.size, epoch: g.sharing.epoch });
      this.wipe();
      if (known?.pending) await settleMove(this.#o, known.pending.sharing, fromPending);
      return true;
    }
    return false;
  }

  /** Zeroes every share held. */
  wipe(): void {
    for (const g of this.#groups.values()) for (const s of g.shares.values()) wipeShare(s);
    this.#groups.clear();
  }
}
