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
 *   `goJson` and `Bytes32`, straight into a Buffer) is read by {@link readRecoverBody}: each
 *   byte goes directly into a fresh `Uint8Array`; other members are skipped.
 *
 * The reader is a strict JSON reader over bytes: whitespace per RFC 8259, depth ≤ 16,
 * duplicate shard ids rejected, each shard exactly 32 integers 0–255 (Go would zero-fill a
 * short array and drop extra elements — G4; we refuse both), ids 1..MAX_SHARE_ID. Any
 * deviation throws {@link ShareBodyError}; partially filled share buffers are wiped first.
 */
import { MAX_SHARE_ID, SHARE_VALUE_BYTES, type Share } from '../crypto/curve-free.js';
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

class ByteReader {
  pos = 0;
  constructor(readonly b: Uint8Array) {}

  fail(): never {
    throw new ShareBodyError();
  }

  ws(): void {
    const b = this.b;
    while (this.pos < b.length) {
      const c = b[this.pos]!;
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else break;
    }
  }

  peek(): number {
    this.ws();
    if (this.pos >= this.b.length) this.fail();
    return this.b[this.pos]!;
  }

  expect(c: number): void {
    if (this.peek() !== c) this.fail();
    this.pos++;
  }

  /** Reads a JSON string made of printable ASCII without escapes (ids and codes); longer or escaped → skipped as null. */
  shortAscii(): string | null {
    this.expect(0x22);
    const start = this.pos;
    let simple = true;
    while (true) {
      if (this.pos >= this.b.length) this.fail();
      const c = this.b[this.pos]!;
      if (c === 0x22) break;
      if (c < 0x20) this.fail();
      if (c === 0x5c) {
        simple = false;
        this.pos++;
        if (this.pos >= this.b.length) this.fail();
        const e = this.b[this.pos]!;
        if (e === 0x75) {
          // \uXXXX
          for (let i = 1; i <= 4; i++) {
            const h = this.b[this.pos + i];
            if (h === undefined || !isHex(h)) this.fail();
          }
          this.pos += 4;
        } else if (!'"\\/bfnrt'.includes(String.fromCharCode(e))) this.fail();
      } else if (c >= 0x80) simple = false;
      this.pos++;
    }
    const end = this.pos;
    this.pos++; // closing quote
    if (!simple || end - start > 64) return null;
    let s = '';
    for (let i = start; i < end; i++) s += String.fromCharCode(this.b[i]!);
    return s;
  }

  literal(word: string): void {
    this.ws();
    for (let i = 0; i < word.length; i++) {
      if (this.b[this.pos + i] !== word.charCodeAt(i)) this.fail();
    }
    this.pos += word.length;
  }

  skipNumber(): void {
    this.ws();
    const start = this.pos;
    const b = this.b;
    if (b[this.pos] === 0x2d) this.pos++;
    if (b[this.pos] === 0x30) this.pos++;
    else if (isDigit1(b[this.pos])) while (isDigit(b[this.pos])) this.pos++;
    else this.fail();
    if (b[this.pos] === 0x2e) {
      this.pos++;
      if (!isDigit(b[this.pos])) this.fail();
      while (isDigit(b[this.pos])) this.pos++;
    }
    if (b[this.pos] === 0x65 || b[this.pos] === 0x45) {
      this.pos++;
      if (b[this.pos] === 0x2b || b[this.pos] === 0x2d) this.pos++;
      if (!isDigit(b[this.pos])) this.fail();
      while (isDigit(b[this.pos])) this.pos++;
    }
    if (this.pos === start) this.fail();
  }

  /** Skips any JSON value. */
  skipValue(depth: number): void {
    if (depth > MAX_DEPTH) this.fail();
    const c = this.peek();
    if (c === 0x7b) {
      this.pos++;
      if (this.peek() === 0x7d) {
        this.pos++;
        return;
      }
      while (true) {
        this.shortAscii();
        this.expect(0x3a);
        this.skipValue(depth + 1);
        const d = this.peek();
        this.pos++;
        if (d === 0x7d) return;
        if (d !== 0x2c) this.fail();
      }
    } else if (c === 0x5b) {
      this.pos++;
      if (this.peek() === 0x5d) {
        this.pos++;
        return;
      }
      while (true) {
        this.skipValue(depth + 1);
        const d = this.peek();
        this.pos++;
        if (d === 0x5d) return;
        if (d !== 0x2c) this.fail();
      }
    } else if (c === 0x22) this.shortAscii();
    else if (c === 0x74) this.literal('true');
    else if (c === 0x66) this.literal('false');
    else if (c === 0x6e) this.literal('null');
    else this.skipNumber();
  }

  /** Reads an integer 0..255 written as plain digits (no sign, fraction or exponent). */
  byte(): number {
    this.ws();
    const b = this.b;
    let n = 0;
    let digits = 0;
    if (b[this.pos] === 0x30 && isDigit(b[this.pos + 1])) this.fail(); // leading zero
    while (isDigit(b[this.pos])) {
      n = n * 10 + (b[this.pos]! - 0x30);
      digits++;
      this.pos++;
      if (digits > 3) this.fail();
    }
    if (digits === 0 || n > 255) this.fail();
    const next = b[this.pos];
    if (next === 0x2e || next === 0x65 || next === 0x45) this.fail();
    return n;
  }

  atEnd(): boolean {
    this.ws();
    return this.pos === this.b.length;
  }
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}
function isDigit1(c: number | undefined): boolean {
  return c !== undefined && c >= 0x31 && c <= 0x39;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/**
 * Result of {@link readRecoverBody}: the shares (sorted by id) and the body's `err`:
 * `undefined` when absent, empty or not a string; the code when it is a short plain-ASCII
 * string; `null` when it is a string not copied (escaped, non-ASCII or over 64 bytes).
 */
export interface RecoverBody {
  shares: Share[];
  err: string | null | undefined;
}

/** Reads the recover response body. Wipes every share it allocated if reading fails. */
export function readRecoverBody(bytes: Uint8Array): RecoverBody {
  const r = new ByteReader(bytes);
  const shares: Share[] = [];
  let err: string | null | undefined;
  let sawShards = false;
  try {
    r.expect(0x7b);
    if (r.peek() === 0x7d) r.pos++;
    else {
      while (true) {
        const key = r.shortAscii();
        r.expect(0x3a);
        if (key === 'shards') {
          if (sawShards) r.fail();
          sawShards = true;
          readShards(r, shares);
        } else if (key === 'err') {
          if (r.peek() === 0x22) {
            const code = r.shortAscii();
            err = code === '' ? undefined : code;
          } else r.skipValue(1);
        } else r.skipValue(1);
        const d = r.peek();
        r.pos++;
        if (d === 0x7d) break;
        if (d !== 0x2c) r.fail();
      }
    }
    if (!r.atEnd()) r.fail();
  } catch (e) {
    for (const s of shares) s.value.fill(0);
    throw e;
  }
  shares.sort((a, b) => a.id - b.id);
  return { shares, err };
}

function readShards(r: ByteReader, shares: Share[]): void {
  if (r.peek() === 0x6e) {
    r.literal('null');
    return;
  }
  r.expect(0x7b);
  if (r.peek() === 0x7d) {
    r.pos++;
    return;
  }
  const seen = new Set<number>();
  while (true) {
    const key = r.shortAscii();
    if (key === null || !/^[1-9][0-9]{0,3}$/.test(key)) r.fail();
    const id = Number(key);
    if (id > MAX_SHARE_ID || seen.has(id)) r.fail();
    seen.add(id);
    r.expect(0x3a);
    const value = new Uint8Array(SHARD_LENGTH);
    shares.push({ id, value }); // pushed first so a failure below wipes it
    r.expect(0x5b);
    for (let i = 0; i < SHARD_LENGTH; i++) {
      if (i > 0) r.expect(0x2c);
      value[i] = r.byte();
    }
    r.expect(0x5d);
    const d = r.peek();
    r.pos++;
    if (d === 0x7d) return;
    if (d !== 0x2c) r.fail();
  }
}
