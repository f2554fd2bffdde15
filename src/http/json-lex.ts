/**
 * The tokens of strict JSON read from bytes (json-parser.ts builds values from them): string
 * literals decoded one by one (the document's UTF-8 checked once, up front),
 * numbers per RFC 8259 §6 (integers of up to 15 digits computed from their digits, no text
 * step), the three words. Also the value types and the parser's errors.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import { ApiError, REASON, errorCode, payloadTooLarge } from './errors.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject | JsonBytes;
/** A parsed JSON object. Objects built by the parser have a null prototype. */
export interface JsonObject {
  [key: string]: JsonValue;
}

export interface JsonLimits {
  /** Maximum document size in bytes. */
  maxBytes: number;
  /** Maximum nesting of objects/arrays (the top-level container is depth 1). */
  maxDepth: number;
  /** Maximum members in one object. */
  maxMembers: number;
  /** Maximum elements in one array. */
  maxElements: number;
}

/** Most bytes one key-material array holds (a share or a key: 32). */
export const KEY_BYTES_CAPACITY = 32;

/**
 * The array value of a key-material member, read without a string step. `value` holds the
 * elements when every one was an integer literal 0..255 and there were at most
 * {@link KEY_BYTES_CAPACITY}; otherwise it is null (the partial bytes already zeroed) and
 * the schema refuses the member. Whoever parsed the document zeroes it ({@link wipe}).
 */
export class JsonBytes {
  constructor(
    public value: Uint8Array | null,
    /** Elements the array had. */
    public length: number,
  ) {}

  wipe(): void {
    this.value?.fill(0);
  }
}

/** A body that is not acceptable JSON (400, the bad-request code). */
export class JsonError extends ApiError {
  constructor(reason: string, message: string) {
    super(errorCode('badRequest'), message, { reason, expose: true });
  }
}

export const E = {
  syntax: () => new JsonError(REASON.invalidJson, 'request body is not valid JSON'),
  utf8: () => new JsonError(REASON.invalidJson, 'request body is not valid UTF-8'),
  surrogate: () => new JsonError(REASON.invalidJson, 'request body contains a lone surrogate'),
  tooLarge: () => payloadTooLarge(),
  depth: () => new JsonError(REASON.jsonTooDeep, 'JSON nesting is too deep'),
  members: () => new JsonError(REASON.jsonTooManyMembers, 'JSON object has too many members'),
  elements: () => new JsonError(REASON.jsonTooManyElements, 'JSON array has too many elements'),
  duplicate: () => new JsonError(REASON.jsonDuplicateMember, 'JSON object has a duplicate member name'),
} as const;


function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

export function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

const WORDS: ReadonlyArray<readonly [number, readonly number[], JsonValue]> = [
  [0x74, [0x74, 0x72, 0x75, 0x65], true],
  [0x66, [0x66, 0x61, 0x6c, 0x73, 0x65], false],
  [0x6e, [0x6e, 0x75, 0x6c, 0x6c], null],
];

/** A cursor over the document's bytes. */
export class Lexer {
  protected i = 0;

  /**
   * The whole document as text, when it may be one (it holds no key material) and is all
   * ASCII: string literals are then slices of it, which is cheaper than decoding each.
   */
  private readonly whole: string | undefined;

  constructor(
    protected readonly b: Buffer,
    /** Go's reading of numbers: see `JsonParseOptions.integerLiterals`. */
    protected readonly integerLiterals: boolean,
    holdsKeyMaterial: boolean,
  ) {
    const ascii = isAscii(b);
    // Checked once here, so each string literal can then be decoded without a check of its own.
    if (!ascii && !isUtf8(b)) throw E.utf8();
    this.whole = !holdsKeyMaterial && ascii ? b.toString('latin1') : undefined;
  }

  /** The byte at `i`, or -1 past the end. */
  protected at(i: number): number {
    return i < this.b.length ? this.b[i]! : -1;
  }

  protected ws(): void {
    const b = this.b;
    let i = this.i;
    while (i < b.length && isWs(b[i]!)) i++;
    this.i = i;
  }

  /** `true`, `false` or `null` at this.i (first byte `c`). */
  protected word(c: number): JsonValue {
    for (const [first, bytes, v] of WORDS) {
      if (c !== first) continue;
      for (let k = 1; k < bytes.length; k++) if (this.at(this.i + k) !== bytes[k]) throw E.syntax();
      this.i += bytes.length;
      return v;
    }
    throw E.syntax();
  }

  /** A JSON number at this.i: its value when it is a plain integer 0..255, else -1. */
  protected byteLiteral(): number {
    const start = this.i;
    const b = this.b;
    let n = 0;
    const isPlain = this.at(start) !== 0x2d;
    this.number();
    if (!isPlain || this.i - start > 3) return -1;
    for (let k = start; k < this.i; k++) {
      const c = b[k]!;
      if (!isDigit(c)) return -1;
      n = n * 10 + (c - 0x30);
    }
    return n <= 255 ? n : -1;
  }

  /** Parses a string literal starting at the opening quote. */
  protected string(): string {
    const b = this.b;
    let i = this.i + 1;
    let start = i;
    let ascii = true;
    let out = '';
    for (;;) {
      if (i >= b.length) throw E.syntax();
      const c = b[i]!;
      if (c === 0x22) {
        out += this.text(start, i, ascii);
        this.i = i + 1;
        return out;
      }
      if (c < 0x20) throw E.syntax();
      if (c >= 0x80) ascii = false;
      if (c !== 0x5c /* \ */) {
        i++;
        continue;
      }
      out += this.text(start, i, ascii);
      ascii = true;
      const e = this.at(i + 1);
      switch (e) {
        case 0x22: out += '"'; i += 2; break;
        case 0x5c: out += '\\'; i += 2; break;
        case 0x2f: out += '/'; i += 2; break;
        case 0x62: out += '\b'; i += 2; break;
        case 0x66: out += '\f'; i += 2; break;
        case 0x6e: out += '\n'; i += 2; break;
        case 0x72: out += '\r'; i += 2; break;
        case 0x74: out += '\t'; i += 2; break;
        case 0x75: {
          const u = this.hex4(i + 2);
          i += 6;
          if (u >= 0xdc00 && u <= 0xdfff) throw E.surrogate();
          if (u >= 0xd800 && u <= 0xdbff) {
            if (this.at(i) !== 0x5c || this.at(i + 1) !== 0x75) throw E.surrogate();
            const lo = this.hex4(i + 2);
            if (lo < 0xdc00 || lo > 0xdfff) throw E.surrogate();
            i += 6;
            out += String.fromCharCode(u, lo);
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default:
          throw E.syntax();
      }
      start = i;
    }
  }

  /** The bytes [from, to) of a string literal as text (escape-free; UTF-8 checked unless ASCII). */
  protected text(from: number, to: number, ascii: boolean): string {
    if (from === to) return '';
    if (ascii) return this.whole !== undefined ? this.whole.slice(from, to) : this.b.toString('latin1', from, to);
    // The document is valid UTF-8 (checked at the start) and a literal's text is cut only at
    // ASCII bytes, never inside a character: so the text is valid UTF-8 too.
    return this.b.toString('utf8', from, to);
  }

  protected hex4(at: number): number {
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const h = hexVal(this.at(at + k));
      if (h < 0) throw E.syntax();
      v = (v << 4) | h;
    }
    return v;
  }

  /** Parses a number per RFC 8259 §6 and converts it as JSON.parse does. */
  protected number(): number {
    const b = this.b;
    const start = this.i;
    let i = start;
    const negative = this.at(i) === 0x2d;
    if (negative) i++;
    const digits = i;
    const first = this.at(i);
    if (first === 0x30) {
      i++;
    } else if (first >= 0x31 && first <= 0x39) {
      while (isDigit(this.at(i))) i++;
    } else {
      throw E.syntax();
    }
    const intEnd = i;
    let integer = true;
    if (this.at(i) === 0x2e /* . */) {
      integer = false;
      i++;
      if (!isDigit(this.at(i))) throw E.syntax();
      while (isDigit(this.at(i))) i++;
    }
    const ex = this.at(i);
    if (ex === 0x65 || ex === 0x45) {
      integer = false;
      i++;
      const sign = this.at(i);
      if (sign === 0x2b || sign === 0x2d) i++;
      if (!isDigit(this.at(i))) throw E.syntax();
      while (isDigit(this.at(i))) i++;
    }
    this.i = i;
    if (!integer && this.integerLiterals) return NaN;
    if (integer && intEnd - digits <= 15) {
      // Exact in a double: no text step.
      let n = 0;
      for (let k = digits; k < intEnd; k++) n = n * 10 + (b[k]! - 0x30);
      return negative ? -n : n;
    }
    return Number(this.whole !== undefined ? this.whole.slice(start, i) : b.toString('latin1', start, i));
  }
}
