/**
 * The Keeper share codec: a share message (keeper.ts's {@link ShareMessage} schema) decoded into
 * a {@link WireShare}, its Feldman commitments parsed (so this module loads the curve code,
 * src/crypto's index), and a share encoded back into message bytes. Used by the Keeper, Nexus
 * and Bootstrap; the SDK and the CLI's everyday commands never load it (issue 15), which is why
 * it is outside the protocol's curve-free door (curve-free.ts). Decoded share values are
 * secrets: the caller wipes them.
 */
import { parseBody } from '../http/index.js';
import { Commitments, formatShardJsonArray } from '../crypto/index.js';
import { SpikeError } from '../lib/index.js';
import { ShareMessage } from './keeper.js';

export class ShareWireError extends SpikeError {
  constructor(reason: string) {
    super('api_bad_request', `invalid share message: ${reason}`);
  }
}

export interface WireShare {
  value: Uint8Array;
  id: number | undefined;
  epoch: number | undefined;
  commitments: Commitments | undefined;
  /** Contribute: hold as the pending share of a sharing move. */
  pending?: boolean;
  /** Shard response: the Keeper's pending share, when it holds one (caller wipes it too). */
  pendingShare?: WireShare;
  /** Contribute (Bootstrap): stage the share; served only after the unstaged commit. */
  staged?: boolean;
}

/** Largest share message a reader parses. */
const MAX_SHARE_MESSAGE_BYTES = 64 * 1024;

function parseCommitments(b: Uint8Array | undefined): Commitments | undefined {
  if (b === undefined || b.length === 0) return undefined;
  return Commitments.fromBytes(b);
}

/** Turns a schema-validated message into a share (parses the commitments). */
export function toWireShare(m: ShareMessage): WireShare {
  const p = typeof m.pending === 'object' ? m.pending : undefined;
  try {
    const w: WireShare = { value: m.shard, id: m.id, epoch: m.epoch, commitments: parseCommitments(m.commitments) };
    if (m.pending === true) w.pending = true;
    if (m.staged === true) w.staged = true;
    if (p) w.pendingShare = { value: p.shard, id: p.id, epoch: p.epoch, commitments: parseCommitments(p.commitments) };
    return w;
  } catch {
    m.shard.fill(0);
    p?.shard.fill(0);
    throw new ShareWireError('commitments are malformed');
  }
}

/** Decodes a share message from raw JSON bytes (bounded parser, strict schema). */
export function decodeShareBody(body: Uint8Array): WireShare {
  let m: ShareMessage;
  try {
    m = parseBody(ShareMessage, body, { maxBytes: MAX_SHARE_MESSAGE_BYTES });
  } catch {
    throw new ShareWireError('not a valid share message');
  }
  return toWireShare(m);
}

/**
 * Encodes a share message as JSON bytes. The JSON text necessarily spells the share as
 * decimal numbers; the returned Buffer is the only copy and the caller wipes it after
 * sending.
 */
export function encodeShareMessage(w: WireShare, withErrField: boolean): Buffer {
  const parts: string[] = [];
  if (w.id !== undefined) parts.push(`"id":${w.id}`);
  if (w.epoch !== undefined) parts.push(`"epoch":${w.epoch}`);
  if (w.commitments !== undefined) parts.push(`"commitments":"${Buffer.from(w.commitments.toBytes()).toString('base64')}"`);
  if (w.pending === true) parts.push('"pending":true');
  if (w.staged === true) parts.push('"staged":true');
  if (withErrField) parts.push('"Err":""');
  const shard = formatShardJsonArray(w.value);
  const out = Buffer.concat([Buffer.from('{"shard":'), shard, Buffer.from(parts.length ? `,${parts.join(',')}}` : '}')]);
  shard.fill(0);
  return out;
}
