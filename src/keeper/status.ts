/**
 * Decoding of the Keeper's `/v1/store/status` answer on the Nexus side: bounded JSON parser,
 * strict schema (KeeperStatusResponse), the anchor kept as raw bytes (Nexus verifies it).
 */
import { parseBody } from '../http/index.js';
import { KeeperStatusResponse } from '../protocol/index.js';
import { SpikeError } from '../lib/index.js';

export interface KeeperStatus {
  /** Epoch of the held share; null: the Keeper holds none. */
  epoch: number | null;
  /** Share id of the held share, when the sender gave one. */
  id: number | null;
  /** Epoch of a pending share (a sharing move in progress), or null. */
  pending: number | null;
  /** False: the held share is Bootstrap's, not yet sent by Nexus (undefined: not said). */
  confirmed?: boolean | undefined;
  /** The rollback anchor the Keeper holds, when any. */
  anchor: Uint8Array | undefined;
}

/** Largest status answer parsed (the anchor is at most 512 bytes). */
const MAX_STATUS_BYTES = 4096;

export function decodeKeeperStatus(body: Uint8Array): KeeperStatus {
  let m: KeeperStatusResponse;
  try {
    m = parseBody(KeeperStatusResponse, body, { maxBytes: MAX_STATUS_BYTES });
  } catch {
    throw new SpikeError('keeper_bad_response', 'not a valid keeper status message');
  }
  return { epoch: m.epoch, id: m.id, pending: m.pending ?? null, confirmed: m.confirmed, anchor: m.anchor !== undefined && m.anchor.length > 0 ? m.anchor : undefined };
}
