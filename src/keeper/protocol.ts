/**
 * Wire format of the Keeper API (api.md §10), shared by the Keeper server, Nexus and
 * Bootstrap. SPIKE's shapes plus additive fields (share-lifecycle.md): `id`, `epoch`
 * and `commitments` (base64 of the compact Feldman serialisation). Readers ignore
 * unknown fields, so SPIKE senders and future additive fields keep working.
 *
 *   contribute request   {"shard":[32 ints], "id"?: n, "epoch"?: n, "commitments"?: b64}
 *   shard response       {"shard":[32 ints], "Err":"", "id"?: n, "epoch"?: n, "commitments"?: b64}
 *
 * Decoding is strict (catalogue KPR-03…06): exactly 32 integers in 0..255, not all zero.
 * Decoded share values are secrets: the caller wipes them.
 */
import { Commitments, formatShardJsonArray, shareValueFromJsonArray } from '../crypto/index.js';
import { SpikeError } from '../errors.js';

export const KEEPER_CONTRIBUTE_PATH = '/v1/store/contribute';
export const KEEPER_SHARD_PATH = '/v1/store/shard';

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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Decodes a JSON array of exactly 32 integers 0..255 into a fresh buffer (not all zero). */
export function decodeShardArray(v: unknown): Uint8Array {
  let out: Uint8Array;
  try {
    out = shareValueFromJsonArray(v);
  } catch {
    throw new ShareWireError('shard must be an array of exactly 32 integers 0..255');
  }
  if (out.every((b) => b === 0)) throw new ShareWireError('shard must not be all zero');
  return out;
}

function optionalPositiveInt(o: Record<string, unknown>, key: string, max: number): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) {
    throw new ShareWireError(`${key} must be an integer between 1 and ${max}`);
  }
  return v;
}

function optionalCommitments(o: Record<string, unknown>): Commitments | undefined {
  const v = o['commitments'];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || v.length > 200_000 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) {
    throw new ShareWireError('commitments must be base64');
  }
  try {
    return Commitments.fromBytes(Buffer.from(v, 'base64'));
  } catch {
    throw new ShareWireError('commitments are malformed');
  }
}

/** Decodes a contribute request or a shard response body (already JSON-parsed). */
export function decodeShareMessage(body: unknown): WireShare {
  if (!isRecord(body)) throw new ShareWireError('body must be a JSON object');
  const id = optionalPositiveInt(body, 'id', 1000);
  const epoch = optionalPositiveInt(body, 'epoch', Number.MAX_SAFE_INTEGER);
  const commitments = optionalCommitments(body);
  const value = decodeShardArray(body['shard']);
  return { value, id, epoch, commitments };
}

/**
 * Encodes a share message as JSON bytes. The JSON text necessarily spells the share as
 * decimal numbers; the returned Buffer is the only copy and the caller wipes it after
 * sending.
 */
export function encodeShareMessage(s: WireShare, withErrField: boolean): Buffer {
  const parts: string[] = [];
  if (s.id !== undefined) parts.push(`"id":${s.id}`);
  if (s.epoch !== undefined) parts.push(`"epoch":${s.epoch}`);
  if (s.commitments !== undefined) parts.push(`"commitments":"${Buffer.from(s.commitments.toBytes()).toString('base64')}"`);
  if (withErrField) parts.push('"Err":""');
  const shard = formatShardJsonArray(s.value);
  const out = Buffer.concat([Buffer.from('{"shard":'), shard, Buffer.from(parts.length ? `,${parts.join(',')}}` : '}')]);
  shard.fill(0);
  return out;
}
