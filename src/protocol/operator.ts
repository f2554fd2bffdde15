/**
 * The break-the-glass routes (`/v1/operator/recover`, `/v1/operator/restore` and the additive
 * `/v1/operator/commitments`): request schemas, response types in Go field order and their
 * zero-valued error shapes. A share value is Go `[32]byte`: an array of 32 numbers on the
 * wire ({@link Bytes32} when encoding); the byte-level reading and writing of share bodies is
 * in `shares.ts`.
 */
import { Bytes32, type Infer, s } from '../http/index.js';

export const RecoverRequest = s.empty();
export type RecoverRequest = Infer<typeof RecoverRequest>;
export type RecoverResponse = {
  /** keyed by decimal share id */
  shards: ReadonlyMap<string, Bytes32> | null;
  /** additive: epoch of the shares */
  epoch?: number;
  err?: string;
};

/** Range of `id` is checked by the handler with `validateRestoreId` (configurable max). */
export const RestoreRequest = s.object({
  id: s.int(),
  shard: s.bytes32({ nonZero: true }),
  /** additive */
  epoch: s.optional(s.int({ min: 0 })),
});
export type RestoreRequest = Infer<typeof RestoreRequest>;
export type RestoreResponse = { collected: number; remaining: number; restored: boolean; err?: string };

/** additive: `{}` → the public sharing parameters (for offline share checks). */
export const CommitmentsRequest = s.empty();
export type CommitmentsRequest = Infer<typeof CommitmentsRequest>;
export type CommitmentsResponse = {
  /** base64 of the compact Feldman commitments (`Commitments.toBytes`) */
  commitments: string;
  threshold: number;
  shares: number;
  epoch: number;
};

/**
 * additive: `POST /v1/operator/accept-rollback` `{}` (superuser) → whether a detected state
 * rollback was accepted; when it was, the counters before and the store's new counter.
 * `state`: `serving` (nothing to accept), `checking` (the start-up check still runs).
 */
export const AcceptRollbackRequest = s.empty();
export type AcceptRollbackResponse = {
  accepted: boolean;
  state: string;
  storeCounter?: number;
  keeperCounter?: number;
  counter?: number;
};
/** additive: `{}` → a share refresh ran; the new sharing's public parameters. */
export const RefreshSharesRequest = s.empty();
export type RefreshSharesRequest = Infer<typeof RefreshSharesRequest>;
export type RefreshSharesResponse = { epoch: number; threshold: number; shares: number };
/**
 * additive: `{}` → the sharing after a Keeper set / threshold change to the configured
 * settings; `changed: false` when the stored sharing already matched (nothing moved).
 */
export const ReshareRequest = s.empty();
export type ReshareRequest = Infer<typeof ReshareRequest>;
export type ReshareResponse = { changed: boolean; epoch: number; threshold: number; shares: number };

/** Zero-valued error bodies of the operator routes (`code` is the wire error code). */
export const OPERATOR_ERROR_SHAPES = {
  recover: (code: string) => ({ shards: null, err: code }),
  restore: (code: string) => ({ collected: 0, remaining: 0, restored: false, err: code }),
} as const;

/** Builds Go's `map[int]…` JSON object form (decimal string keys), e.g. the recover `shards`. */
export function intKeyedMap<V>(entries: Iterable<readonly [number, V]>): Map<string, V> {
  const out = new Map<string, V>();
  for (const [key, value] of entries) out.set(String(key), value);
  return out;
}
