/**
 * Share bodies at the byte level: recovery shares never become JavaScript strings.
 *
 * Shares are key material: they must stay in `Uint8Array`s that the holder zeroes, and never
 * become a JS string (strings cannot be wiped). SPIKE encodes a share as a JSON array of 32
 * integers (Go `[32]byte`), so the two operator messages are read and written here without
 * a text step:
 *
 * - the restore request `{"id":<id>,"shard":[b0,…,b31]}` is written by {@link formatRestoreBody}
 *   (`src/crypto`), after {@link isValidShare};
 * - the recover response `{"shards":{"<id>":[32 ints],…},"err":"…"}` (Nexus writes it with
 *   `goJson` and `Bytes32`, straight into a Buffer) is read by {@link readRecoverBody} with the
 *   project's strict JSON parser (`src/http/json.ts`), every member named by digits being key
 *   material: each byte goes directly into a `Uint8Array`, never a string.
 *
 * On top of the parser's rules (RFC 8259, duplicate names refused, here depth ≤ 16), each
 * shard is exactly 32 integers 0–255 (Go would zero-fill a short array and drop extra
 * elements — G4; we refuse both) under a canonical id 1..MAX_SHARE_ID. Any deviation throws
 * {@link ShareBodyError}; every share buffer made is wiped first.
 */
import { MAX_SHARE_ID, SHARE_VALUE_BYTES, type Share } from '../crypto/curve-free.js';
import { JsonBytes, type KeyMemberNames, isJsonObject, parseJson } from '../http/index.js';
import { SpikeError } from '../lib/index.js';

export { formatRestoreBody, type Share } from '../crypto/curve-free.js';

/** Bytes in one share value. */
export const SHARD_LENGTH = SHARE_VALUE_BYTES;
const MAX_DEPTH = 16;

/** A share body that is not exactly the expected shape (the caller maps it to its own error). */
export class ShareBodyError extends SpikeError {
  constructor() {
    super('data_unmarshal_failure', 'malformed share body');
  }
}

/** True when every byte is zero. */
export function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i]!;
  return acc === 0;
}

/** True when `(id, value)` may be sent: id 1..MAX_SHARE_ID, exactly 32 bytes, not all zero. */
export function isValidShare(id: number, value: Uint8Array): boolean {
  if (!Number.isSafeInteger(id) || id < 1 || id > MAX_SHARE_ID) return false;
  return value instanceof Uint8Array && value.length === SHARD_LENGTH && !isAllZero(value);
}

/**
 * Result of {@link readRecoverBody}: the shares (sorted by id) and the body's `err`:
 * `undefined` when absent, empty or not a string; the code when it is a short printable-ASCII
 * string; `null` for any other string (non-ASCII or over 64 characters).
 */
export interface RecoverBody {
  shares: Share[];
  err: string | null | undefined;
}

/** In a recover answer, every member named by digits is a share (`"shards": {"<id>": [32 ints]}`). */
const SHARE_ID_NAMES: KeyMemberNames = { has: (name) => /^[0-9]+$/.test(name) };
const CANONICAL_ID = /^[1-9][0-9]{0,3}$/;

/** Reads the recover response body. Wipes every share it allocated if reading fails. */
export function readRecoverBody(bytes: Uint8Array): RecoverBody {
  const made: JsonBytes[] = [];
  const shares: Share[] = [];
  try {
    const doc = parseJson(bytes, { maxDepth: MAX_DEPTH, keyBytes: { members: SHARE_ID_NAMES, made } });
    if (!isJsonObject(doc)) throw new ShareBodyError();
    const shards = doc['shards'];
    if (shards !== undefined && shards !== null) {
      if (!isJsonObject(shards)) throw new ShareBodyError();
      for (const [key, v] of Object.entries(shards)) {
        // Go would zero-fill a short array and drop extra elements (G4): both refused.
        if (!CANONICAL_ID.test(key) || Number(key) > MAX_SHARE_ID || !(v instanceof JsonBytes) || v.value === null || v.length !== SHARD_LENGTH) {
          throw new ShareBodyError();
        }
        shares.push({ id: Number(key), value: Uint8Array.from(v.value) });
      }
    }
    const e = doc['err'];
    const err = typeof e !== 'string' || e === '' ? undefined : /^[\x20-\x7e]{1,64}$/.test(e) ? e : null;
    shares.sort((a, b) => a.id - b.id);
    return { shares, err };
  } catch {
    for (const sh of shares) sh.value.fill(0);
    throw new ShareBodyError();
  } finally {
    for (const m of made) m.wipe();
  }
}
