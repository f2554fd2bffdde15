/**
 * Go-compatible JSON encoding (`encoding/json` output, byte for byte, for Go peers),
 * written straight into a Buffer so that byte fields (shares, plaintexts) are never turned
 * into intermediate JS strings by the encoder.
 *
 * Mapping from JS values:
 * - plain / null-prototype objects → Go structs: members in insertion order, `undefined`
 *   members omitted (use that for `omitempty`), `null` written;
 * - `Map` → Go map: keys sorted by their UTF-8 bytes (Go sorts map keys), so `"10"` < `"2"`;
 * - `Uint8Array` / `Buffer` → Go `[]byte`: standard base64 with padding;
 * - {@link Bytes32} → Go `[32]byte`: array of 32 numbers;
 * - {@link GoTime} / `Date` → Go `time.Time`: RFC 3339 with up to 9 fractional digits, trailing
 *   zeros trimmed, UTC `Z`; {@link GoTime.ZERO} is `"0001-01-01T00:00:00Z"`;
 * - strings: Go's escaping, including HTML-safe `\u003c`, `\u003e`, `\u0026`, `\u2028`,
 *   `\u2029`, `\b`/`\f`/`\n`/`\r`/`\t`, other controls as `\u00XX`, lone surrogates as
 *   `\ufffd` (Go replaces invalid UTF-8);
 * - numbers must be finite (Go cannot encode NaN/Inf); integers print plainly.
 * The encoder is iterative-safe for the shapes we produce (responses are shallow) and refuses
 * nesting deeper than 64 to stay bounded.
 */
import { SpikeError } from '../lib/index.js';
import { errorCode } from './errors.js';

/** A Go `[32]byte` value (shares). Wraps, does not copy; zero the source after encoding. */
export class Bytes32 {
  constructor(readonly bytes: Uint8Array) {
    if (bytes.length !== 32) throw new SpikeError(errorCode('internal'), 'Bytes32 needs exactly 32 bytes');
  }
}

/** A Go `time.Time` with nanosecond precision (UTC). */
export class GoTime {
  /** Go's zero time, 0001-01-01T00:00:00Z. */
  static readonly ZERO = new GoTime(-62135596800n * 1_000_000_000n);
  constructor(readonly epochNanos: bigint) {}
  static fromDate(d: Date): GoTime {
    return new GoTime(BigInt(d.getTime()) * 1_000_000n);
  }
  static fromMillis(ms: number): GoTime {
    return new GoTime(BigInt(Math.trunc(ms)) * 1_000_000n);
  }
  /** Current time; sub-millisecond digits come from the monotonic clock's offset. */
  static now(): GoTime {
    return new GoTime(BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n));
  }
  isZero(): boolean {
    return this.epochNanos === GoTime.ZERO.epochNanos;
  }
  /** RFC 3339 with up to 9 fractional digits (Go's `time.RFC3339Nano`). */
  toRfc3339Nano(): string {
    const NS = 1_000_000_000n;
    let sec = this.epochNanos / NS;
    let frac = this.epochNanos % NS;
    if (frac < 0n) {
      frac += NS;
      sec -= 1n;
    }
    const base = new Date(Number(sec) * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
    const head = base.slice(0, base.indexOf('.'));
    if (frac === 0n) return head + 'Z';
    const digits = frac.toString().padStart(9, '0').replace(/0+$/, '');
    return `${head}.${digits}Z`;
  }
  toJSON(): string {
    return this.toRfc3339Nano();
  }
}

/** Values {@link goJson} can encode. */
export type GoJsonValue =
  | null
  | undefined
  | boolean
  | number
  | string
  | Uint8Array
  | Bytes32
  | GoTime
  | Date
  | readonly GoJsonValue[]
  | ReadonlyMap<string, GoJsonValue>
  | { readonly [k: string]: GoJsonValue };

const HEX = '0123456789abcdef';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const MAX_DEPTH = 64;

/** Largest working buffer kept for the next call; a larger one (a long listing) is dropped. */
const SCRATCH_KEEP_BYTES = 16 * 1024;
/**
 * The encoder's working buffer, reused from call to call instead of a new one each (issue 17).
 * It is taken while a call runs (a call started meanwhile would get one of its own; encoding is
 * synchronous, so none is), may then hold secret values, and is zeroed over what was written
 * before it is put back.
 */
let scratch: Buffer | undefined;

class Out {
  buf: Buffer;
  len = 0;
  constructor() {
    this.buf = scratch ?? Buffer.allocUnsafeSlow(256);
    scratch = undefined;
  }
  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const nb = Buffer.allocUnsafeSlow(size);
    this.buf.copy(nb, 0, 0, this.len);
    this.buf.fill(0, 0, this.len);
    this.buf = nb;
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }
  ascii(s: string): void {
    this.ensure(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.len++] = s.charCodeAt(i);
  }
  utf8(s: string): void {
    this.ensure(s.length * 3);
    this.len += this.buf.write(s, this.len, 'utf8');
  }
  /** The encoded bytes, in a buffer of their own length (from Node's shared pool when small). */
  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.len);
    this.buf.copy(out, 0, 0, this.len);
    this.release(this.len);
    return out;
  }
  /** Zeroes the first `n` bytes (everything written) and keeps the buffer for the next call. */
  release(n: number): void {
    this.buf.fill(0, 0, n);
    if (this.buf.length <= SCRATCH_KEEP_BYTES) scratch = this.buf;
  }
}

function encodeString(o: Out, s: string): void {
  o.byte(0x22);
  let start = 0;
  const flush = (end: number): void => {
    if (end > start) o.utf8(s.slice(start, end));
  };
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | null = null;
    if (c < 0x20 || c === 0x22 || c === 0x5c || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) {
      switch (c) {
        case 0x22: esc = '\\"'; break;
        case 0x5c: esc = '\\\\'; break;
        case 0x0a: esc = '\\n'; break;
        case 0x0d: esc = '\\r'; break;
        case 0x09: esc = '\\t'; break;
        case 0x08: esc = '\\b'; break;
        case 0x0c: esc = '\\f'; break;
        default:
          esc = '\\u' + HEX[(c >> 12) & 15] + HEX[(c >> 8) & 15] + HEX[(c >> 4) & 15] + HEX[c & 15];
      }
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++; // a valid pair: written by flush
        continue;
      }
      esc = '\\ufffd';
    }
    if (esc !== null) {
      flush(i);
      o.ascii(esc);
      start = i + 1;
    }
  }
  flush(s.length);
  o.byte(0x22);
}

function encodeBase64(o: Out, b: Uint8Array): void {
  o.byte(0x22);
  o.ensure(Math.ceil(b.length / 3) * 4);
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = ((b[i] as number) << 16) | ((b[i + 1] as number) << 8) | (b[i + 2] as number);
    o.buf[o.len++] = B64.charCodeAt((n >> 18) & 63);
    o.buf[o.len++] = B64.charCodeAt((n >> 12) & 63);
    o.buf[o.len++] = B64.charCodeAt((n >> 6) & 63);
    o.buf[o.len++] = B64.charCodeAt(n & 63);
  }
  const rest = b.length - i;
  if (rest > 0) {
    const n = ((b[i] as number) << 16) | (rest === 2 ? (b[i + 1] as number) << 8 : 0);
    o.buf[o.len++] = B64.charCodeAt((n >> 18) & 63);
    o.buf[o.len++] = B64.charCodeAt((n >> 12) & 63);
    o.buf[o.len++] = rest === 2 ? B64.charCodeAt((n >> 6) & 63) : 0x3d;
    o.buf[o.len++] = 0x3d;
  }
  o.byte(0x22);
}

function encodeByteArray(o: Out, b: Uint8Array): void {
  o.byte(0x5b);
  o.ensure(b.length * 4);
  for (let i = 0; i < b.length; i++) {
    if (i > 0) o.buf[o.len++] = 0x2c;
    const v = b[i] as number;
    if (v >= 100) o.buf[o.len++] = 0x30 + Math.floor(v / 100);
    if (v >= 10) o.buf[o.len++] = 0x30 + (Math.floor(v / 10) % 10);
    o.buf[o.len++] = 0x30 + (v % 10);
  }
  o.byte(0x5d);
}

/** True when `s` has no UTF-16 code unit ≥ 0xD800 (surrogates and U+E000…U+FFFF). */
function belowSurrogates(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0xd800) return false;
  return true;
}

/**
 * Go's map key order: by UTF-8 bytes. Below U+D800, UTF-16 code-unit order is code-point
 * order, which is UTF-8 byte order, so the common keys compare without encoding them.
 */
function byteOrder(a: string, b: string): number {
  if (belowSurrogates(a) && belowSurrogates(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function encode(o: Out, v: GoJsonValue, depth: number): void {
  if (depth > MAX_DEPTH) throw new SpikeError(errorCode('internal'), 'response nesting too deep');
  if (v === null || v === undefined) return o.ascii('null');
  switch (typeof v) {
    case 'boolean':
      return o.ascii(v ? 'true' : 'false');
    case 'number':
      if (!Number.isFinite(v)) throw new SpikeError(errorCode('internal'), 'cannot encode a non-finite number');
      return o.ascii(Object.is(v, -0) ? '0' : String(v));
    case 'string':
      return encodeString(o, v);
    default:
      break;
  }
  if (v instanceof Uint8Array) return encodeBase64(o, v);
  if (v instanceof Bytes32) return encodeByteArray(o, v.bytes);
  if (v instanceof GoTime) return o.ascii('"' + v.toRfc3339Nano() + '"');
  if (v instanceof Date) return o.ascii('"' + GoTime.fromDate(v).toRfc3339Nano() + '"');
  if (Array.isArray(v)) {
    o.byte(0x5b);
    for (let i = 0; i < v.length; i++) {
      if (i > 0) o.byte(0x2c);
      encode(o, (v as readonly GoJsonValue[])[i], depth + 1);
    }
    return o.byte(0x5d);
  }
  if (v instanceof Map) {
    const keys = [...(v as ReadonlyMap<string, GoJsonValue>).keys()].sort(byteOrder);
    o.byte(0x7b);
    keys.forEach((k, i) => {
      if (i > 0) o.byte(0x2c);
      encodeString(o, k);
      o.byte(0x3a);
      encode(o, (v as ReadonlyMap<string, GoJsonValue>).get(k), depth + 1);
    });
    return o.byte(0x7d);
  }
  const obj = v as { readonly [k: string]: GoJsonValue };
  o.byte(0x7b);
  let first = true;
  for (const k of Object.keys(obj)) {
    const m = obj[k];
    if (m === undefined) continue;
    if (!first) o.byte(0x2c);
    first = false;
    encodeString(o, k);
    o.byte(0x3a);
    encode(o, m, depth + 1);
  }
  o.byte(0x7d);
}

/** Encodes `v` as Go's `json.Marshal` would (see module doc) into a fresh Buffer. */
export function goJson(v: GoJsonValue): Buffer {
  const o = new Out();
  try {
    encode(o, v, 0);
    return o.finish();
  } catch (e) {
    o.release(o.buf.length);
    throw e;
  }
}

/** Convenience for tests and logs of non-secret values. */
export function goJsonString(v: GoJsonValue): string {
  return goJson(v).toString('utf8');
}
