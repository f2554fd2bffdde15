/**
 * The sharing records' tag (D7): HMAC-SHA-256 under the `sharing-record/v1` purpose key over
 * a fixed label, the record's kind (current or pending: neither passes for the other) and the
 * record's untagged bytes. The records are public (commitments reveal
 * nothing beyond g^s) but say where Nexus sends shares, so a record changed by anyone who can
 * write the database must not be followed: only Nexus, holding the root key, can tag one.
 *
 * Secret: the derived key, zeroed after each use.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { derivePurposeKey, wipe, type RootKey } from '../../crypto/index.js';

const LABEL = Buffer.from('spike-ts/sharing-record', 'latin1');
const TAG_BYTES = 32;

/** The tag of `body` as a `kind` record ('current' or 'pending') under `root`. */
export function sharingTag(root: RootKey, kind: string, body: Uint8Array): Buffer {
  const key = derivePurposeKey(root, 'sharing-record/v1');
  try {
    return createHmac('sha256', key).update(LABEL).update(`/${kind}\n`).update(body).digest();
  } finally {
    wipe(key);
  }
}

/** Whether `tag` is the tag of `body` as a `kind` record under `root` (constant time). */
export function sharingTagValid(root: RootKey, kind: string, body: Uint8Array, tag: Uint8Array): boolean {
  return tag.length === TAG_BYTES && timingSafeEqual(sharingTag(root, kind, body), tag);
}
