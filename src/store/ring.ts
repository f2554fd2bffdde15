/**
 * One ring of the keyring (keyring.ts): the generations of one key family (storage or
 * cipher) by key id, the current one, and the per-generation AES-GCM use counters with this
 * process's reserved block (see keyring.ts for the counting rule). Its encoding is part of
 * the keyring record's plaintext:
 *   current id (u32 BE) ‖ count (u16 BE) ‖ count × (id u32 BE ‖ key (32) ‖ reserved u64 BE)
 *
 * Secrets: each generation's key (a private copy beside its `Aead`), zeroed when the
 * generation is replaced, erased (`dropOlder`, `adopt`) or the ring destroyed.
 */
import { randomFillSync } from 'node:crypto';
import { Aead, wipe, type RandomSource } from '../crypto/index.js';
import { StoreError } from './types.js';

/** Seals reserved at once (smaller when the limit is small, so a test can reach it). */
const RESERVE_BLOCK = 1 << 16;
const KEY_BYTES = 32;
const ENTRY_BYTES = 4 + KEY_BYTES + 8;

function blockSize(limit: number): number {
  return Math.max(1, Math.min(RESERVE_BLOCK, Math.floor(limit / 8)));
}

export type RingName = 'storage' | 'cipher';

interface Generation {
  aead: Aead;
  /** Raw key copy, kept only to re-seal the record (wiped with the generation). */
  key: Uint8Array;
  /** Persisted high-water mark of seals handed out under this key. */
  reserved: number;
  /** This process's block: next seal number and its end (next === end: reserve first). */
  next: number;
  end: number;
}

/** One ring of generations (storage or cipher). */
export class Ring {
  #current: number;
  readonly #gens = new Map<number, Generation>();
  readonly #rng: RandomSource | undefined;

  constructor(current: number, rng?: RandomSource) {
    this.#current = current;
    this.#rng = rng;
  }

  /** @internal Adds a generation (copies `key`). */
  put(id: number, key: Uint8Array, reserved: number): void {
    const old = this.#gens.get(id);
    old?.aead.destroy();
    wipe(old?.key);
    this.#gens.set(id, { aead: new Aead(key, id, this.#rng), key: Uint8Array.from(key), reserved, next: 0, end: 0 });
  }

  get current(): number {
    return this.#current;
  }

  /** Key ids held, ascending. */
  ids(): number[] {
    return [...this.#gens.keys()].sort((a, b) => a - b);
  }

  /** The AEAD of generation `id`, or undefined when it is not held (erased or unknown). */
  aead(id: number): Aead | undefined {
    return this.#gens.get(id)?.aead;
  }

  /** Seals still available in this process's block of the current generation. */
  remaining(): number {
    const g = this.#gens.get(this.#current);
    return g ? g.end - g.next : 0;
  }

  /** Below this many seals left in the block, a new one is reserved ahead of need. */
  lowWater(limit: number): number {
    return Math.floor(blockSize(limit) / 2);
  }

  /** Persisted count of seals reserved under generation `id` (0 when not held). */
  reserved(id: number): number {
    return this.#gens.get(id)?.reserved ?? 0;
  }

  /** Counts one seal under the current generation and returns its AEAD; `store_busy` when no block is reserved. */
  takeSeal(): Aead {
    return this.#take().aead;
  }

  /**
   * Counts one seal under the current generation and returns its id and a COPY of its key
   * (the caller wipes it): for sealers that frame their own messages (the cipher API).
   */
  takeSealKey(): { id: number; key: Uint8Array } {
    return { id: this.#current, key: Uint8Array.from(this.#take().key) };
  }

  /** A copy of generation `id`'s key for opening (the caller wipes it), or undefined when not held. */
  keyCopy(id: number): Uint8Array | undefined {
    const g = this.#gens.get(id);
    return g ? Uint8Array.from(g.key) : undefined;
  }

  #take(): Generation {
    const g = this.#gens.get(this.#current);
    if (!g || g.next >= g.end) throw new StoreError('store_busy');
    g.next++;
    return g;
  }

  /**
   * Raises the current generation's reservation by one block (or, when that would pass
   * `limit`, adds a fresh generation and makes it current) and makes that block this
   * ring's own. Run on a ring freshly read inside the transaction that writes it back, then
   * `adopt` it into the live ring. Returns whether a new generation was made.
   */
  reserve(limit: number): boolean {
    const block = blockSize(limit);
    let g = this.#gens.get(this.#current);
    let rotated = false;
    if (!g || g.reserved + block > limit) {
      this.addGeneration();
      g = this.#gens.get(this.#current)!;
      rotated = true;
    }
    g.next = g.reserved;
    g.reserved += block;
    g.end = g.reserved;
    return rotated;
  }

  /**
   * Makes this (live) ring hold what `from` (a copy freshly read and written back) holds:
   * its generations, reservations and current id, and its block of the current generation.
   * Generations `from` no longer holds (erased by any process) are zeroed here too.
   */
  adopt(from: Ring): void {
    for (const [id, o] of from.#gens) {
      const g = this.#gens.get(id);
      if (!g) this.put(id, o.key, o.reserved);
      const mine = this.#gens.get(id)!;
      mine.reserved = o.reserved;
      if (o.end > o.next) {
        mine.next = o.next;
        mine.end = o.end;
      }
    }
    for (const [id, g] of this.#gens) {
      if (from.#gens.has(id)) continue;
      g.aead.destroy();
      wipe(g.key);
      this.#gens.delete(id);
    }
    this.#current = from.#current;
  }

  /** A fresh random generation (id = highest + 1), made current. */
  addGeneration(): number {
    const id = Math.max(0, ...this.#gens.keys()) + 1;
    const key = this.#rng ? this.#rng(KEY_BYTES) : randomFillSync(new Uint8Array(KEY_BYTES));
    try {
      this.put(id, key, 0);
    } finally {
      wipe(key);
    }
    this.#current = id;
    return id;
  }

  /** Erases (and zeroes) every generation older than the current one; returns the ids dropped. */
  dropOlder(): number[] {
    const dropped: number[] = [];
    for (const [id, g] of this.#gens) {
      if (id === this.#current) continue;
      g.aead.destroy();
      wipe(g.key);
      this.#gens.delete(id);
      dropped.push(id);
    }
    return dropped.sort((a, b) => a - b);
  }

  /** @internal Encoded entries (the caller wipes the result). */
  encode(): Uint8Array {
    const ids = this.ids();
    // The count is a uint16: never wrap it (a wrapped count would make the record unreadable).
    if (ids.length > 0xffff) throw new Error('keyring: too many key generations');
    const out = new Uint8Array(6 + ids.length * ENTRY_BYTES);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, this.#current, false);
    dv.setUint16(4, ids.length, false);
    let o = 6;
    for (const id of ids) {
      const g = this.#gens.get(id)!;
      dv.setUint32(o, id, false);
      out.set(g.key, o + 4);
      dv.setBigUint64(o + 4 + KEY_BYTES, BigInt(g.reserved), false);
      o += ENTRY_BYTES;
    }
    return out;
  }

  /** @internal Reads a ring at `o` of `buf`; returns the offset after it. */
  static decode(buf: Uint8Array, o: number, rng: RandomSource | undefined): { ring: Ring; end: number } {
    const bad = (): never => { throw new StoreError('store_integrity'); };
    if (buf.length < o + 6) bad();
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const ring = new Ring(dv.getUint32(o, false), rng);
    const n = dv.getUint16(o + 4, false);
    o += 6;
    if (n < 1 || buf.length < o + n * ENTRY_BYTES) bad();
    for (let i = 0; i < n; i++, o += ENTRY_BYTES) {
      const id = dv.getUint32(o, false);
      const reserved = Number(dv.getBigUint64(o + 4 + KEY_BYTES, false));
      if (id < 1 || ring.#gens.has(id) || !Number.isSafeInteger(reserved)) bad();
      ring.put(id, buf.subarray(o + 4, o + 4 + KEY_BYTES), reserved);
    }
    if (!ring.#gens.has(ring.#current)) bad();
    return { ring, end: o };
  }

  destroy(): void {
    for (const g of this.#gens.values()) {
      g.aead.destroy();
      wipe(g.key);
    }
    this.#gens.clear();
  }
}
