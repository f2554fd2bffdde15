/**
 * SPIKE's encodings of a share, produced and parsed without ever turning
 * share bytes into a JS string:
 *
 * - JSON array of 32 integers 0..255 — the `shard` field of `/v1/store/contribute`,
 *   `/v1/store/shard` and `/v1/operator/restore` (Go encodes `[32]byte` this way; never
 *   base64). Exactly 32 elements: unlike Go (G4), 31 or 33 are rejected.
 * - Recovery-file text `spike:<id>:<64 lowercase hex>` (no newline), file
 *   `spike.recovery.<id>.txt`. Parsing also accepts uppercase hex and surrounding ASCII
 *   whitespace (a trailing newline from a pipe or an editor).
 * - Recover-route map `{"1":[…],"2":[…]}` (decimal-string ids), serialised with keys
 *   in Go's `encoding/json` map order (sorted as strings: "10" before "2").
 *
 * The `format*` functions write JSON/text bytes straight into a Buffer, so a server can
 * send a share without `JSON.stringify` of a secret. Encodings carry no semantics: a
 * zero or ≥ n value parses here and is rejected by `shareScalar`/`combineShares`.
 *
 * Secrets: every value buffer, number array and formatted Buffer here holds share
 * bytes; they are returned to the caller, who wipes them (`fill(0)` works on number
 * arrays too). Temporary buffers are wiped in `finally`.
 */
import { CryptoError } from './errors.js';
import { SHARE_VALUE_BYTES, isValidShareId, type Share } from './share.js';
import { wipe } from './wipe.js';

const ASCII = (s: string): Buffer => Buffer.from(s, 'latin1'); // for constant syntax only
const HEX = ASCII('0123456789abcdef');

/** The value as an array of 32 numbers (SPIKE's `shard`); wipe with `.fill(0)`. */
export function shareValueToJsonArray(value: Uint8Array): number[] {
  assertValue(value);
  return Array.from(value);
}

/**
 * Parses a decoded JSON `shard` (must be an array of exactly 32 integers 0..255) into a
 * new 32-byte buffer; anything else is `crypto_bad_encoding`.
 */
export function shareValueFromJsonArray(x: unknown): Uint8Array {
  if (!Array.isArray(x) || x.length !== SHARE_VALUE_BYTES) throw new CryptoError('crypto_bad_encoding');
  const out = new Uint8Array(SHARE_VALUE_BYTES);
  let ok = true;
  for (let i = 0; i < SHARE_VALUE_BYTES; i++) {
    const v: unknown = x[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) ok = false;
    else out[i] = v;
  }
  if (!ok) {
    wipe(out);
    throw new CryptoError('crypto_bad_encoding');
  }
  return out;
}

/** `[b0,b1,…,b31]` as JSON bytes (no spaces, as Go writes it). */
export function formatShardJsonArray(value: Uint8Array): Buffer {
  assertValue(value);
  // Longest form: 32×"255" + 31 commas + 2 brackets.
  const out = Buffer.alloc(32 * 3 + 31 + 2);
  let off = 0;
  out[off++] = 0x5b; // [
  for (let i = 0; i < value.length; i++) {
    if (i > 0) out[off++] = 0x2c; // ,
    off = writeDecimal(out, off, value[i]!);
  }
  out[off++] = 0x5d; // ]
  return finish(out, off);
}

/** `{"shard":[…]}` — the Keeper contribute request / shard response body. */
export function formatShardBody(value: Uint8Array): Buffer {
  return wrap(ASCII('{"shard":'), formatShardJsonArray(value), ASCII('}'));
}

/** `{"id":<id>,"shard":[…]}` — the `/v1/operator/restore` request body. */
export function formatRestoreBody(share: Share): Buffer {
  assertShare(share);
  return wrap(ASCII(`{"id":${share.id},"shard":`), formatShardJsonArray(share.value), ASCII('}'));
}

/** Recovery file content `spike:<id>:<64 lowercase hex>`, no trailing newline. */
export function formatRecoveryFile(share: Share): Buffer {
  assertShare(share);
  const head = ASCII(`spike:${share.id}:`);
  const out = Buffer.alloc(head.length + 2 * SHARE_VALUE_BYTES);
  head.copy(out, 0);
  let off = head.length;
  for (const b of share.value) {
    out[off++] = HEX[b >> 4]!;
    out[off++] = HEX[b & 15]!;
  }
  return out;
}

/** File name SPIKE uses for share `id`: `spike.recovery.<id>.txt`. */
export function recoveryFileName(id: number): string {
  if (!isValidShareId(id)) throw new CryptoError('crypto_bad_encoding');
  return `spike.recovery.${id}.txt`;
}

/**
 * Parses recovery-file text (`spike:<id>:<64 hex>`, optional surrounding whitespace).
 * Returns a share with a new value buffer; malformed input is `crypto_bad_encoding`.
 */
export function parseRecoveryFile(text: Uint8Array): Share {
  if (!(text instanceof Uint8Array)) throw new CryptoError('crypto_bad_encoding');
  let start = 0;
  let end = text.length;
  while (start < end && isSpace(text[start]!)) start++;
  while (end > start && isSpace(text[end - 1]!)) end--;
  const prefix = ASCII('spike:');
  let p = start;
  for (const c of prefix) {
    if (p >= end || text[p] !== c) throw new CryptoError('crypto_bad_encoding');
    p++;
  }
  let id = 0;
  let digits = 0;
  while (p < end && text[p]! >= 0x30 && text[p]! <= 0x39) {
    id = id * 10 + (text[p]! - 0x30);
    digits++;
    p++;
    if (digits > 6) throw new CryptoError('crypto_bad_encoding');
  }
  if (digits === 0 || p >= end || text[p] !== 0x3a /* : */ || !isValidShareId(id)) throw new CryptoError('crypto_bad_encoding');
  p++;
  if (end - p !== 2 * SHARE_VALUE_BYTES) throw new CryptoError('crypto_bad_encoding');
  const value = new Uint8Array(SHARE_VALUE_BYTES);
  let ok = true;
  for (let i = 0; i < SHARE_VALUE_BYTES; i++) {
    const hi = hexVal(text[p + 2 * i]!);
    const lo = hexVal(text[p + 2 * i + 1]!);
    if (hi < 0 || lo < 0) ok = false;
    value[i] = ((hi & 15) << 4) | (lo & 15);
  }
  if (!ok) {
    wipe(value);
    throw new CryptoError('crypto_bad_encoding');
  }
  return { id, value };
}

/** `{"1":[…],…}` as a JS object (for callers that build a larger JSON value). */
export function sharesToRecoverMap(shares: readonly Share[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const s of shares) {
    assertShare(s);
    const key = decimal(s.id);
    if (Object.hasOwn(out, key)) throw new CryptoError('crypto_bad_encoding');
    out[key] = shareValueToJsonArray(s.value);
  }
  return out;
}

/**
 * Parses a decoded recover-route map (`{"<id>":[32 ints],…}`; keys canonical decimal
 * 1..MAX_SHARE_ID) into shares sorted by id; anything else is `crypto_bad_encoding`.
 */
export function sharesFromRecoverMap(x: unknown): Share[] {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) throw new CryptoError('crypto_bad_encoding');
  const shares: Share[] = [];
  try {
    for (const [k, v] of Object.entries(x as Record<string, unknown>)) {
      if (!/^[1-9][0-9]{0,5}$/.test(k)) throw new CryptoError('crypto_bad_encoding');
      const id = Number(k);
      if (!isValidShareId(id)) throw new CryptoError('crypto_bad_encoding');
      shares.push({ id, value: shareValueFromJsonArray(v) });
    }
  } catch (e) {
    shares.forEach((s) => wipe(s.value));
    throw e;
  }
  return shares.sort((a, b) => a.id - b.id);
}

/** `{"shards":{"1":[…],…}}` — the `/v1/operator/recover` response body, Go key order. */
export function formatRecoverBody(shares: readonly Share[]): Buffer {
  const sorted = [...shares];
  sorted.forEach(assertShare);
  const keys = sorted.map((s) => decimal(s.id));
  if (new Set(keys).size !== keys.length) throw new CryptoError('crypto_bad_encoding');
  const order = keys.map((k, i) => ({ k, i })).sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  const parts: Buffer[] = [ASCII('{"shards":{')];
  order.forEach(({ k, i }, j) => {
    parts.push(ASCII(`${j > 0 ? ',' : ''}"${k}":`), formatShardJsonArray(sorted[i]!.value));
  });
  parts.push(ASCII('}}'));
  return wrap(...parts);
}

function assertValue(value: Uint8Array): void {
  if (!(value instanceof Uint8Array) || value.length !== SHARE_VALUE_BYTES) throw new CryptoError('crypto_bad_encoding');
}

function assertShare(s: Share): void {
  if (s === null || typeof s !== 'object' || !isValidShareId(s.id)) throw new CryptoError('crypto_bad_encoding');
  assertValue(s.value);
}

/** Decimal digits of a public integer (ids only). */
function decimal(n: number): string {
  return n.toFixed(0);
}

function writeDecimal(out: Buffer, off: number, v: number): number {
  if (v >= 100) out[off++] = 0x30 + Math.floor(v / 100);
  if (v >= 10) out[off++] = 0x30 + (Math.floor(v / 10) % 10);
  out[off++] = 0x30 + (v % 10);
  return off;
}

/** Copies out[0..len) into an exact-size Buffer and wipes the scratch buffer. */
function finish(out: Buffer, len: number): Buffer {
  const exact = Buffer.alloc(len);
  out.copy(exact, 0, 0, len);
  wipe(out);
  return exact;
}

/** Concatenates and wipes the parts. */
function wrap(...parts: Buffer[]): Buffer {
  const out = Buffer.concat(parts);
  wipe(...parts);
  return out;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
