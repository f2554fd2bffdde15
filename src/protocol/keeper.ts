/**
 * The Keeper API (`/v1/store/contribute`, `/v1/store/shard`), shared by the Keeper server,
 * Nexus and Bootstrap. SPIKE's shapes plus additive fields: `id`, `epoch` and `commitments`
 * (base64 of the compact Feldman serialisation). Readers ignore unknown fields, so SPIKE
 * senders and future additive fields keep working.
 *
 *   contribute request   {"shard":[32 ints], "id"?: n, "epoch"?: n, "commitments"?: b64, "pending"?: true, "staged"?: true}
 *   shard response       {"shard":[32 ints], "Err":"", "epoch"?: n, "id"?: n, "commitments"?: b64, "anchor"?: b64,
 *                         "pending"?: {"shard":[32 ints], "id"?: n, "epoch"?: n, "commitments"?: b64}}
 *   anchor request       {"anchor": b64}  → {}          (Nexus's rollback anchor, opaque to the Keeper)
 *   status request       {}  → {"epoch": n|null, "id": n|null, "pending": n|null, "anchor"?: b64}
 *
 * `pending` belongs to a sharing move (share refresh, Keeper set change): in a contribute
 * request it asks the Keeper to hold the share beside its current one; in a shard response
 * it is that held pending share; in a status answer, its epoch. `staged` is Bootstrap's first
 * phase (CFG-03): the Keeper holds the share apart and never serves it until the identical
 * share arrives without the flag (src/keeper/slot.ts).
 *
 * Note the shard response's capitalised `Err` (never omitted). Decoding is strict (KPR-03…06):
 * exactly 32 integers in 0..255, not all zero, an epoch in 1…MAX_SHARE_EPOCH, through the
 * bounded JSON parser and {@link ShareMessage}. Decoded share values are secrets: the caller
 * wipes them.
 */
import { type Bytes32, type Infer, type Schema, parseJson, s } from '../http/index.js';
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
  /** Contribute: hold as the pending share of a sharing move. */
  pending?: boolean;
  /** Shard response: the Keeper's pending share, when it holds one (caller wipes it too). */
  pendingShare?: WireShare;
  /** Contribute (Bootstrap): stage the share; served only after the unstaged commit. */
  staged?: boolean;
}

/** Largest compact commitments accepted (threshold ≤ MAX_SHARE_ID). */
const MAX_COMMITMENT_BYTES = 1 + 33 * MAX_SHARE_ID;
/** Largest share message a reader parses. */
const MAX_SHARE_MESSAGE_BYTES = 64 * 1024;

const shareFields = {
  shard: s.bytes32({ nonZero: true }),
  id: s.optional(s.int({ min: 1, max: MAX_SHARE_ID })),
  epoch: s.optional(s.int({ min: 1, max: MAX_SHARE_EPOCH })),
  commitments: s.optional(s.base64({ maxBytes: MAX_COMMITMENT_BYTES })),
};
/** Schema of a pending share inside a shard response. */
const PendingShareMessage = s.object(shareFields);

type PendingShareMessage = Infer<typeof PendingShareMessage>;
const pendingFlag = s.optional(s.bool());

/**
 * `pending`: `true`/`false` in a contribute request, a share object in a shard response.
 * Anything else is a schema error.
 */
const PendingField: Schema<boolean | PendingShareMessage | undefined> = {
  describe: 'boolean or pending share',
  parse(v, at) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return PendingShareMessage.parse(v, at);
    return pendingFlag.parse(v, at);
  },
};

/** Schema of a contribute request / shard response (unknown fields ignored, strict types). */
export const ShareMessage = s.object({ ...shareFields, pending: PendingField, staged: s.optional(s.bool()) });
export type ShareMessage = Infer<typeof ShareMessage>;

/** `POST /v1/store/contribute` body. */
export const ShardContributeRequest = ShareMessage;
export type ShardContributeRequest = ShareMessage;
export type ShardContributeResponse = { err?: string };

/** `POST /v1/store/shard` body: `{}`. */
export const ShardGetRequest = s.empty();
export type ShardGetRequest = Infer<typeof ShardGetRequest>;
export type ShardGetResponse = {
  shard: Bytes32 | null; Err: string; epoch?: number; id?: number; commitments?: string; anchor?: string;
  pending?: { shard: Bytes32; id?: number; epoch?: number; commitments?: string };
};

/** Zero-valued error body of the shard route (`code` is the wire error code). */
export const KEEPER_ERROR_SHAPES = {
  keeperShard: (code: string) => ({ shard: null, Err: code }),
} as const;

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
  if (w.pending === true) parts.push('"pending":true');
  if (w.staged === true) parts.push('"staged":true');
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
