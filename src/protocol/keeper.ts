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
 * wipes them. The codec that turns a message into a share and back (`decodeShareBody`,
 * `encodeShareMessage`) parses the Feldman commitments, so it loads the curve code: it is in
 * keeper-share.ts, outside the protocol's curve-free door; the schemas here are in it.
 */
import { type Bytes32, type Infer, type Schema, s } from '../http/index.js';
import { MAX_SHARE_ID } from '../crypto/curve-free.js';
import { MAX_SHARE_EPOCH } from './limits.js';

/** Largest compact commitments accepted (threshold ≤ MAX_SHARE_ID). */
const MAX_COMMITMENT_BYTES = 1 + 33 * MAX_SHARE_ID;

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
  keyMembers: PendingShareMessage.keyMembers,
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
  confirmed: s.optional(s.bool()),
  anchor: s.optional(s.base64({ maxBytes: MAX_ANCHOR_BYTES })),
});
export type KeeperStatusResponse = Infer<typeof KeeperStatusResponse>;
