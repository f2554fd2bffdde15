/**
 * Bounded memo tables a RecordSealer (codec.ts) keeps (P1: a warm GET spent about 4% of Nexus's
 * CPU computing its record id and 8% opening and decoding its metadata; a PUT opens the
 * metadata too).
 *
 * - Record ids: HMAC-SHA-256 of `"s:" + path` (or `"p:" + name`) under the sealer's path key,
 *   remembered per input string. The paths themselves are already held in memory by the path
 *   index; an id is a keyed hash, not a secret.
 * - Decoded metadata: the state last opened from, or sealed into, a record's metadata blob,
 *   used again only while the stored blob is byte-for-byte the same (every write seals with a
 *   fresh nonce, so any change, from this process or another one on the same database, is a
 *   miss; a write of this process makes its own state the remembered one). Only
 *   version numbers, timestamps and deletion marks are kept: a state with custom metadata is
 *   never remembered, and secret values never pass through here.
 *
 * Both tables forget their oldest entry when full and are emptied with the sealer (lock,
 * rotation), so what they hold never outlives the keys it was derived with.
 */
import type { SecretState } from './model.js';

/** A map of at most `max` entries that forgets the oldest one inserted when full. */
export class BoundedMemo<V> {
  readonly #max: number;
  readonly #map = new Map<string, V>();

  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError('bad memo size');
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string): V | undefined {
    return this.#map.get(key);
  }

  set(key: string, value: V): void {
    if (this.#map.size >= this.#max && !this.#map.has(key)) {
      const oldest = this.#map.keys().next();
      if (oldest.done !== true) this.#map.delete(oldest.value);
    }
    this.#map.set(key, value);
  }

  clear(): void {
    this.#map.clear();
  }
}

/** Record ids remembered. */
export const ID_MEMO_ENTRIES = 8192;
/** Decoded metadata states remembered. */
export const META_MEMO_ENTRIES = 4096;
/** Metadata blobs larger than this (many versions) are not remembered. */
export const META_MEMO_MAX_BLOB = 2048;

/** Record ids by their HMAC input; hands out copies, so no caller can alter a remembered id. */
export class IdMemo {
  readonly #memo = new BoundedMemo<Buffer>(ID_MEMO_ENTRIES);
  readonly #hash: (input: string) => Buffer;

  constructor(hash: (input: string) => Buffer) {
    this.#hash = hash;
  }

  id(input: string): Buffer {
    let id = this.#memo.get(input);
    if (id === undefined) {
      id = this.#hash(input);
      this.#memo.set(input, ownCopy(id));
      return id;
    }
    return Buffer.from(id);
  }

  clear(): void {
    this.#memo.clear();
  }
}

/** A Map whose entries can no longer change once built: `Object.freeze` does not reach a Map's entries. */
class ReadOnlyMap<K, V> extends Map<K, V> {
  #built = false;

  constructor(entries: Iterable<readonly [K, V]>) {
    super();
    for (const [k, v] of entries) super.set(k, v);
    this.#built = true;
  }

  override set(key: K, value: V): this {
    if (this.#built) throw new TypeError('a remembered state is read-only');
    return super.set(key, value);
  }

  override delete(): boolean {
    throw new TypeError('a remembered state is read-only');
  }

  override clear(): void {
    throw new TypeError('a remembered state is read-only');
  }
}

/**
 * A copy with memory of its own, for what a memo keeps. `Buffer.from` would cut a small copy
 * from Node's shared 8 KiB pool, which the request path also uses for short-lived buffers, and
 * each long-kept copy would then hold a whole pool block alive: in FI-19's short form (some
 * 4,600 paths), Nexus's RSS grew 14% and 21% over its first run with pooled copies, 6.8% with
 * copies of their own.
 */
function ownCopy(b: Uint8Array): Buffer {
  const c = Buffer.allocUnsafeSlow(b.byteLength);
  c.set(b);
  return c;
}

function keyOf(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');
}

interface MetaEntry {
  readonly blob: Buffer;
  readonly state: Readonly<SecretState>;
}

/**
 * Decoded metadata by record id, valid only for the exact blob it was opened from or sealed
 * into. The states handed out are shared and read-only: frozen, their versions in a Map that
 * refuses changes (readers only look at them, the write planners clone them first).
 */
export class MetaMemo {
  readonly #memo = new BoundedMemo<MetaEntry>(META_MEMO_ENTRIES);

  /** The state opened from `blob` for `id`: remembered, or `open()` (then remembered when eligible). */
  open(id: Uint8Array, blob: Uint8Array, open: () => SecretState): Readonly<SecretState> {
    const hit = this.#memo.get(keyOf(id));
    if (hit !== undefined && hit.blob.equals(blob)) return hit.state;
    const state = open();
    this.remember(id, blob, state);
    return state;
  }

  /**
   * The blob whose state is remembered for `id`, if any: a reader may ask its database to
   * answer "unchanged" instead of a copy of the same bytes (sqlite/store.ts). Read-only.
   */
  blob(id: Uint8Array): Buffer | undefined {
    return this.#memo.get(keyOf(id))?.blob;
  }

  /**
   * Remembers that `blob` holds `state` for `id` (just sealed, or just opened), if eligible;
   * `state` is frozen from now on. A blob whose write is later rolled back never appears in
   * the store (each seal has a fresh nonce), so it can only ever miss.
   */
  remember(id: Uint8Array, blob: Uint8Array, state: SecretState): void {
    if (blob.byteLength > META_MEMO_MAX_BLOB || state.meta.customMetadata !== undefined) return;
    Object.freeze(state.meta);
    for (const v of state.versions.values()) Object.freeze(v);
    state.versions = new ReadOnlyMap(state.versions);
    this.#memo.set(keyOf(id), { blob: ownCopy(blob), state: Object.freeze(state) });
  }

  clear(): void {
    this.#memo.clear();
  }
}
