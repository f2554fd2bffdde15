/**
 * The Nexus side of key adoption: the public sharing record (`SharingInfo` ↔ bytes) and
 * `adoptKey`, the one place where a rebuilt root key is accepted (used by Keeper recovery
 * and by operator restore).
 *
 * The store does the rest in ONE transaction (`Store.adoptKey`): on a first start it
 * writes its key-check record and this sharing record, first writer wins, so several Nexus
 * instances sharing one database agree on one key; later it refuses a key that does not
 * open the key-check record, and asks `judge` here whether the stored sharing has these
 * commitments. Both records are public: commitments reveal nothing beyond g^s, and the
 * key-check record is an AEAD envelope under a purpose key (D6, D7).
 *
 * `adoptKey` with `storedMayBe` finishes a sharing move found half-done at recovery: the
 * key was rebuilt from the PENDING sharing while the store still records the previous one;
 * the caller then commits the pending sharing (pending.ts).
 *
 * The records are public but not trusted: whoever can write the database could otherwise
 * change where Nexus sends shares. Each record carries a tag under the root key
 * (sharing-tag.ts), and `adoptKey` installs a sharing read from the database only when its
 * tag verifies; a record written before tags only on the one start that upgrades the store
 * (see {@link trustedSharing}).
 */
import { Commitments, type RootKey, type Share } from '../../crypto/index.js';
import { SpikeError } from '../../lib/index.js';
import { KEY_CHECK_RECORD, type Store } from '../../store/index.js';
import { sharingTag, sharingTagValid } from './sharing-tag.js';
import type { KeyState, SharingInfo } from './state.js';

export const SHARING_RECORD = 'sharing';

export class AdoptError extends SpikeError {
  constructor(code: 'key_check_failed' | 'sharing_record_malformed' | 'sharing_mismatch' | 'sharing_record_untrusted' | 'sharing_record_untagged' | 'sharing_record_missing') {
    super(code, {
      key_check_failed: 'the rebuilt root key does not open the key-check record; it is not this store\'s key',
      sharing_record_malformed: 'the stored sharing record is malformed',
      sharing_record_untagged: 'the stored sharing record has no integrity tag (written by an older version): start Nexus once with SPIKE_NEXUS_ACCEPT_UNTAGGED_SHARING=true to adopt and tag it',
      sharing_record_missing: 'the store has a key-check record but no sharing record (deleted?); restore the database from a backup',
      sharing_mismatch: 'the stored sharing record belongs to a different key',
      sharing_record_untrusted: 'the stored sharing record fails its integrity check (changed outside Nexus?); no share is sent to the Keepers it names',
    }[code]);
  }
}

/** The record's fields without its tag: the bytes the tag covers. */
function untagged(s: SharingInfo): Buffer {
  return Buffer.from(JSON.stringify({
    v: 1, epoch: s.epoch, threshold: s.threshold, shares: s.shares,
    commitments: Buffer.from(s.commitments.toBytes()).toString('base64'),
    ...(s.peers ? { peers: s.peers } : {}),
  }));
}

/**
 * The tag each sharing decoded from a record carried (null: a record written before tags), by
 * object. A sharing built in memory is not here: this Nexus built it from what it trusts (its
 * configuration, or a sharing already installed), and so is a copy made of an installed one.
 */
const TAGS = new WeakMap<SharingInfo, { tag: Buffer | null; kind: SharingRecordKind }>();

/** Which record a sharing is (or was read from): the tag covers it, so neither passes for the other. */
export type SharingRecordKind = 'current' | 'pending';

/** The record of `s` as `kind`, tagged under `root` (the root key the sharing splits). */
export function encodeSharing(s: SharingInfo, root: RootKey, kind: SharingRecordKind = 'current'): Uint8Array {
  const body = untagged(s);
  return Buffer.concat([body.subarray(0, body.length - 1), Buffer.from(`,"tag":"${sharingTag(root, kind, body).toString('base64')}"}`, 'latin1')]);
}

/** Decodes a sharing record read as `kind`; throws on any malformation. Its tag is checked by {@link trustedSharing}. */
export function decodeSharing(b: Uint8Array, kind: SharingRecordKind = 'current'): SharingInfo {
  try {
    const o = JSON.parse(Buffer.from(b).toString('utf8')) as Record<string, unknown>;
    const { epoch, threshold, shares, commitments, peers, tag } = o;
    if (o['v'] !== 1 || !Number.isSafeInteger(epoch) || !Number.isSafeInteger(threshold) || !Number.isSafeInteger(shares) || typeof commitments !== 'string') {
      throw new Error('shape');
    }
    if (peers !== undefined && (!Array.isArray(peers) || peers.length !== shares || !peers.every((p) => typeof p === 'string') || new Set(peers).size !== peers.length)) throw new Error('peers');
    if (tag !== undefined && typeof tag !== 'string') throw new Error('tag');
    const c = Commitments.fromBytes(Buffer.from(commitments, 'base64'));
    if (c.threshold !== threshold) throw new Error('threshold');
    const out: SharingInfo = { epoch: epoch as number, threshold: threshold as number, shares: shares as number, commitments: c };
    if (peers !== undefined) out.peers = peers as string[];
    TAGS.set(out, { tag: tag === undefined ? null : Buffer.from(tag, 'base64'), kind });
    return out;
  } catch {
    throw new AdoptError('sharing_record_malformed');
  }
}

/** How a sharing read from the database is judged (see {@link trustedSharing}). */
export interface SharingTrust {
  /** This Nexus's Keeper list, in order. */
  configuredPeers: readonly string[];
  /**
   * Accept a record written before tags (SPIKE_NEXUS_ACCEPT_UNTAGGED_SHARING, for the one
   * start that upgrades a store): it must still name no Keepers or exactly the configured ones.
   */
  acceptUntagged?: boolean;
}

/**
 * Whether Nexus, holding `root`, may send the shares of `s` to the Keepers it names: a sharing
 * built in memory (see `TAGS`); one read from a record whose tag verifies under `root`; or,
 * only when the operator allows it for an upgrade, one read from a record written before
 * tags that names no Keepers or exactly the configured ones, in order. A record whose tag
 * does not verify, or that lost its tag, is never trusted otherwise: stripping the tag must
 * not be a way back to trusting whatever the database says.
 */
export function trustedSharing(s: SharingInfo, root: RootKey, trust: SharingTrust): 'yes' | 'no' | 'untagged' {
  const read = TAGS.get(s);
  if (read === undefined) return 'yes';
  if (read.tag) return sharingTagValid(root, read.kind, untagged(s), read.tag) ? 'yes' : 'no';
  const p = trust.configuredPeers;
  const matches = s.peers === undefined || (s.peers.length === p.length && s.peers.every((u, i) => u === p[i]));
  if (!matches) return 'no';
  return trust.acceptUntagged === true ? 'yes' : 'untagged';
}

export async function loadSharing(store: Store): Promise<SharingInfo | undefined> {
  const raw = await store.getSystem(SHARING_RECORD);
  return raw ? decodeSharing(raw) : undefined;
}

export async function isInitialized(store: Store): Promise<boolean> {
  return (await store.getSystem(KEY_CHECK_RECORD)) !== null;
}

function sameCommitments(a: Commitments, b: Commitments): boolean {
  return Buffer.from(a.toBytes()).equals(Buffer.from(b.toBytes()));
}

/**
 * Accepts `root` (rebuilt from `basis`, shares of `sharing` that already verified against
 * its commitments) after the key check; unlocks the store and installs the key. Takes
 * ownership of `root` on success; on failure the caller still owns and must destroy it.
 * The sharing installed must be trusted ({@link trustedSharing} with `trust`), else
 * `sharing_record_untrusted` (or `sharing_record_untagged`), refused like a mismatch: the
 * store stays locked, no key is installed, nothing is sent to any Keeper. An untagged record
 * accepted for an upgrade is written back tagged. A store with a key-check record but no
 * sharing record is damaged, never a first start (`sharing_record_missing`): otherwise
 * deleting the record would make Nexus take its configured Keeper list as the truth.
 */
export async function adoptKey(
  store: Store, keys: KeyState, root: RootKey, basis: readonly Share[], sharing: SharingInfo,
  opts: { storedMayBe?: Commitments; trust?: SharingTrust } = {},
): Promise<void> {
  const trust = opts.trust ?? { configuredPeers: [] };
  const verdict = (s: SharingInfo): 'sharing_record_untrusted' | 'sharing_record_untagged' | null => {
    const t = trustedSharing(s, root, trust);
    return t === 'yes' ? null : t === 'no' ? 'sharing_record_untrusted' : 'sharing_record_untagged';
  };
  let chosen = sharing;
  const result = await store.adoptKey(root, {
    recordKey: SHARING_RECORD,
    record: encodeSharing(sharing, root),
    // No record stored, judged in the same transaction: on a first start `sharing` was built
    // from this Nexus's configuration and becomes the record; a store with a key check but no
    // sharing record is damage, and a sharing read from a record deleted meanwhile is judged
    // like any record (so removing it between our read and this transaction gains nothing).
    absent: (initialized) => {
      chosen = sharing;
      return initialized ? 'sharing_record_missing' : verdict(sharing);
    },
    judge: (bytes) => {
      chosen = sharing; // a retried transaction judges again: nothing from an earlier attempt may remain
      let stored: SharingInfo;
      try {
        stored = decodeSharing(bytes);
      } catch {
        return 'sharing_record_malformed';
      }
      if (sameCommitments(stored.commitments, sharing.commitments)) chosen = stored;
      // Finishing a sharing move: the stored record is still the previous sharing.
      else if (opts.storedMayBe === undefined || !sameCommitments(stored.commitments, opts.storedMayBe)) return 'sharing_mismatch';
      return verdict(chosen);
    },
  });
  if (!result.ok) throw new AdoptError(result.refusal);
  keys.install(root, basis, chosen);
  // An untagged record accepted for the upgrade: from now on it carries its tag.
  // (Best effort: if this write fails, the next sharing move tags it.)
  if (TAGS.get(chosen)?.tag === null) await store.putSystem(SHARING_RECORD, encodeSharing(chosen, keys.root())).catch(() => undefined);
}
