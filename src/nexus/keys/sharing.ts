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
 */
import { Commitments, type RootKey, type Share } from '../../crypto/index.js';
import { SpikeError } from '../../lib/index.js';
import { KEY_CHECK_RECORD, type Store } from '../../store/index.js';
import type { KeyState, SharingInfo } from './state.js';

export const SHARING_RECORD = 'sharing';

export class AdoptError extends SpikeError {
  constructor(code: 'key_check_failed' | 'sharing_record_malformed' | 'sharing_mismatch') {
    super(code, {
      key_check_failed: 'the rebuilt root key does not open the key-check record; it is not this store\'s key',
      sharing_record_malformed: 'the stored sharing record is malformed',
      sharing_mismatch: 'the stored sharing record belongs to a different key',
    }[code]);
  }
}

export function encodeSharing(s: SharingInfo): Uint8Array {
  return Buffer.from(JSON.stringify({
    v: 1, epoch: s.epoch, threshold: s.threshold, shares: s.shares,
    commitments: Buffer.from(s.commitments.toBytes()).toString('base64'),
    ...(s.peers ? { peers: s.peers } : {}),
  }));
}

/** Decodes a sharing record (also the pending record's body); throws on any malformation. */
export function decodeSharing(b: Uint8Array): SharingInfo {
  try {
    const o = JSON.parse(Buffer.from(b).toString('utf8')) as Record<string, unknown>;
    const { epoch, threshold, shares, commitments, peers } = o;
    if (o['v'] !== 1 || !Number.isSafeInteger(epoch) || !Number.isSafeInteger(threshold) || !Number.isSafeInteger(shares) || typeof commitments !== 'string') {
      throw new Error('shape');
    }
    if (peers !== undefined && (!Array.isArray(peers) || peers.length !== shares || !peers.every((p) => typeof p === 'string') || new Set(peers).size !== peers.length)) throw new Error('peers');
    const c = Commitments.fromBytes(Buffer.from(commitments, 'base64'));
    if (c.threshold !== threshold) throw new Error('threshold');
    const out: SharingInfo = { epoch: epoch as number, threshold: threshold as number, shares: shares as number, commitments: c };
    if (peers !== undefined) out.peers = peers as string[];
    return out;
  } catch {
    throw new AdoptError('sharing_record_malformed');
  }
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
 */
export async function adoptKey(
  store: Store, keys: KeyState, root: RootKey, basis: readonly Share[], sharing: SharingInfo,
  opts: { storedMayBe?: Commitments } = {},
): Promise<void> {
  let stored: SharingInfo | undefined;
  let viaPrevious = false;
  const result = await store.adoptKey(root, {
    recordKey: SHARING_RECORD,
    record: encodeSharing(sharing),
    judge: (bytes) => {
      stored = undefined; // a retried transaction judges again: nothing from an earlier attempt may remain
      viaPrevious = false;
      try {
        stored = decodeSharing(bytes);
      } catch {
        return 'sharing_record_malformed';
      }
      if (sameCommitments(stored.commitments, sharing.commitments)) return null;
      // Finishing a sharing move: the stored record is still the previous sharing.
      viaPrevious = opts.storedMayBe !== undefined && sameCommitments(stored.commitments, opts.storedMayBe);
      return viaPrevious ? null : 'sharing_mismatch';
    },
  });
  if (!result.ok) throw new AdoptError(result.refusal);
  keys.install(root, basis, viaPrevious ? sharing : (stored ?? sharing));
}
