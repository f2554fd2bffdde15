/**
 * Offline shard check: is a recovery share a point of the polynomial whose Feldman
 * commitments Nexus serves (D6)? Uses `src/crypto` `Commitments`; nothing is submitted.
 */
import { Commitments } from '../crypto/index.js';
import { NexusApiError } from './errors.js';
import type { CommitmentsInfo, Share } from './types.js';

/** True iff `share` verifies against `info.commitments`. Malformed commitments → `data_unmarshal_failure`. */
export function verifyShareAgainst(info: CommitmentsInfo, share: Share): boolean {
  let c: Commitments;
  try {
    c = Commitments.fromBytes(info.commitments);
  } catch (e) {
    throw new NexusApiError('data_unmarshal_failure', { status: 200, cause: e });
  }
  if (info.threshold !== 0 && c.threshold !== info.threshold) {
    throw new NexusApiError('data_unmarshal_failure', { status: 200 });
  }
  return c.verifyShare(share);
}
