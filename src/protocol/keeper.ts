/**
 * The Keeper API (`/v1/store/contribute`, `/v1/store/shard`), shared by the Keeper server,
 * Nexus and Bootstrap. SPIKE's shapes plus additive fields: `id`, `epoch` and `commitments`
 * (base64 of the compact Feldman serialisation). Readers ignore unknown fields, so SPIKE
 * senders and future additive fields keep working.
 *
 *   contribute request   {"shard":[32 ints], "id"?: n, "epoch"?: n, "commitments"?: b64}
 *   shard response       {"shard":[32 ints], "Err":"", "epoch"?: n, "id"?: n, "commitments"?: b64, "anchor"?: b64}
 *   anchor request       {"anchor": b64}  → {}          (Nexus's rollback anchor, opaque to the Keeper)
 *   status request       {}  → {"epoch": n|null, "id": n|null, "pending": n|null, "anchor"?: b64}
 *
 * Note the shard response's capitalised `Err` (never omitted). Decoding is strict (KPR-03…06):
 * exactly 32 integers in 0..255, not all zero, an epoch in 1…MAX_SHARE_EPOCH, through the
 * bounded JSON parser and {@link ShareMessage}. Decoded share values are secrets: the caller
 * wipes them.
 */
import { type Bytes32, type Infer, parseJson, s } from '../http/index.js';
import { Commitments, formatShardJsonArray, MAX_SHARE_ID } from '../crypto/index.js';
import { SpikeError } from '../lib/index.js';
import { MAX_SHARE_EPOCH } from './limits.js';

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
}

/** Largest compact commitments accepted (threshold ≤ MAX_SHARE_ID). */
const MAX_COMMITMENT_BYTES = 1 + 33 * MAX_SHARE_ID;
/** Largest share message a reader parses. */
const MAX_SHARE_MESSAGE_BYTES = 64 * 1024;

/** Schema of a contribute request / shard response (unknown fields ignored, strict types). */
export const ShareMessage = s.object({
  shard: s.bytes32({ nonZero: true }),
  id: s.optional(s.int({ min: 1, max: MAX_SHARE_ID })),
  epoch: s.optional(s.int({ min: 1, max: MAX_SHARE_EPOCH })),
  commitments: s.optional(s.base64({ maxBytes: MAX_COMMITMENT_BYTES })),
});
export type ShareMessage = Infer<typeof ShareMessage>;

/** `POST /v1/store/contribute` body. */
export const ShardContributeRequest = ShareMessage;
export type ShardContributeRequest = ShareMessage;
export type ShardContributeResponse = { err?: string };

/** `POST /v1/store/shard` body: `{}`. */
export const ShardGetRequest = s.empty();
export type ShardGetRequest = Infer<typeof ShardGetRequest>;
export type ShardGetResponse = { shard: Bytes32 | null; Err: string; epoch?: number; id?: number; commitments?: string; anchor?: string };

/** Zero-valued error body of the shard route (`code` is the wire error code). */
export const KEEPER_ERROR_SHAPES = {
  keeperShard: (code: string) => ({ shard: null, Err: code }),
} as const;

/** Turns a schema-validated message into a share (parses the commitments). */
export function toWireShare(m: ShareMessage): WireShare {
  let commitments: Commitments | undefined;
  if (m.commitments !== undefined && m.commitments.length > 0) {
    try {
      commitments = Commitments.fromBytes(m.commitments);
    } catch {
      m.shard.fill(0);
      throw new ShareWireError('commitments are malformed');
    }
  }
  return { value: m.shard, id: m.id, epoch: m.epoch, commitments };
}

/** Decodes a share message from raw JSON bytes (bounded parser, strict schema). */
export function decodeShareBody(body: Uint8Array): WireShare {
  let m: ShareMessage;
  try {
    m = ShareMessage.parse(parseJson(Buffer.from(body.buffer, body.byteOffset, body.byteLength), { maxBytes: MAX_SHARE_MESSAGE_BYTES }), '');
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
  if (withErrField) parts.push('"Err":""');
  const shard = formatShardJsonArray(w.value);
  const out = Buffer.concat([Buffer.from('{"shard":'), shard, Buffer.from(parts.length ? `,${parts.join(',')}}` : '}')]);
  shard.fill(0);
  return out;
}

// --- additive Keeper routes: rollback anchor and status --------------------------------------

/** Largest rollback anchor a Keeper keeps (opaque bytes; Nexus sends far fewer). */
export const MAX_ANCHOR_BYTES = 512;

/** `POST /v1/store/anchor` body `{"anchor": b64}` → `{}` (Nexus only). */
export const AnchorPutRequest = s.object({ anchor: s.base64({ maxBytes: MAX_ANCHOR_BYTES }) });
export type AnchorPutRequest = Infer<typeof AnchorPutRequest>;

/** `POST /v1/store/status` body: `{}` (Nexus only). */
export const KeeperStatusRequest = s.empty();
/**
 * The status answer: the held share's epoch and id (null when none), the pending epoch
 * (null until a pending share exists), and the held anchor (absent when none). Never a share value.
 */
export const KeeperStatusResponse = s.object({
  epoch: s.nullable(s.int({ min: 1, max: MAX_SHARE_EPOCH }), null),
  id: s.nullable(s.int({ min: 1, max: MAX_SHARE_ID }), null),
  pending: s.optional(s.nullable(s.int({ min: 1, max: MAX_SHARE_EPOCH }), null)),
  anchor: s.optional(s.base64({ maxBytes: MAX_ANCHOR_BYTES })),
});
export type KeeperStatusResponse = Infer<typeof KeeperStatusResponse>;
