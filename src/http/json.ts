/**
 * A small strict RFC 8259 JSON parser written for hostile input (decision D4).
 *
 * {@link parseJson} is iterative (an explicit stack, so 100,000-deep nesting cannot blow the
 * JS stack), caps depth (32), members per object (1,000), elements per array (10,000) and
 * bytes (1 MiB) and stops at the first excess, rejects duplicate member names before parsing
 * the duplicate's value, builds **null-prototype** objects (so `__proto__`, `constructor`, …
 * are ordinary own keys that round-trip exactly), rejects invalid UTF-8, a BOM, lone surrogate
 * escapes, comments, trailing commas and every other non-RFC form. Numbers are read as Go's
 * decoder reads them into integer fields (every field of the wire messages this parses is an
 * integer, a string or a byte array): an integer literal is converted as `JSON.parse` does
 * (schemas decide what is an acceptable integer), and a number written with a fraction or an
 * exponent (`1.0`, `1e2`) is read as `NaN`, which no integer schema accepts
 * ({@link JsonParseOptions.integerLiterals}; `false` converts every number as `JSON.parse`).
 * Errors are {@link JsonError}s (400, the bad-request code) with fixed messages that never
 * quote the input. Reading the body under its byte cap is body.ts's job.
 */
import { ApiError, REASON, errorCode, payloadTooLarge } from './errors.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** A parsed JSON object. Objects built by {@link parseJson} have a null prototype. */
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

/** How {@link parseJson} reads a document. */
export interface JsonParseOptions extends Partial<JsonLimits> {
  /**
   * Default true: numbers are read as Go's `encoding/json` reads them into integer fields: only
   * integer literals (`-?(0|[1-9][0-9]*)`) are numbers; one with a fraction or an exponent
   * becomes `NaN`, so an integer schema refuses it and a member nobody reads ignores it.
   * `false`: every number is converted as `JSON.parse` does.
   */
  integerLiterals?: boolean;
}

/** The defaults of D4, in one place. */
export const DEFAULT_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({
  maxBytes: 1024 * 1024,
  maxDepth: 32,
  maxMembers: 1000,
  maxElements: 10_000,
});

/** A body that is not acceptable JSON (400, the bad-request code). */
export class JsonError extends ApiError {
  constructor(reason: string, message: string) {
    super(errorCode('badRequest'), message, { reason, expose: true });
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const E = {
  syntax: () => new JsonError(REASON.invalidJson, 'request body is not valid JSON'),
  utf8: () => new JsonError(REASON.invalidJson, 'request body is not valid UTF-8'),
  surrogate: () => new JsonError(REASON.invalidJson, 'request body contains a lone surrogate'),
  tooLarge: () => payloadTooLarge(),
  depth: () => new JsonError(REASON.jsonTooDeep, 'JSON nesting is too deep'),
  members: () => new JsonError(REASON.jsonTooManyMembers, 'JSON object has too many members'),
  elements: () => new JsonError(REASON.jsonTooManyElements, 'JSON array has too many elements'),
  duplicate: () => new JsonError(REASON.jsonDuplicateMember, 'JSON object has a duplicate member name'),
} as const;

interface Frame {
  obj: JsonObject | null;
  arr: JsonValue[] | null;
  key: string;
  count: number;
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * Parses one JSON document from UTF-8 bytes (or an already-decoded string, whose byte size is
 * then computed) under `limits`. Throws {@link JsonError}.
 */
export function parseJson(input: Uint8Array | string, options: JsonParseOptions = {}): JsonValue {
  const L: JsonLimits = {
    maxBytes: options.maxBytes ?? DEFAULT_JSON_LIMITS.maxBytes,
    maxDepth: options.maxDepth ?? DEFAULT_JSON_LIMITS.maxDepth,
    maxMembers: options.maxMembers ?? DEFAULT_JSON_LIMITS.maxMembers,
    maxElements: options.maxElements ?? DEFAULT_JSON_LIMITS.maxElements,
  };
  let s: string;
  if (typeof input === 'string') {
    if (input.length > L.maxBytes || Buffer.byteLength(input, 'utf8') > L.maxBytes) throw E.tooLarge();
    s = input;
  } else {
    if (input.byteLength > L.maxBytes) throw E.tooLarge();
    try {
      s = decoder.decode(input);
    } catch {
      throw E.utf8();
    }
  }
  return new Parser(s, L, options.integerLiterals !== false).parse();
}

class Parser {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly L: JsonLimits,
    private readonly integerLiterals: boolean,
  ) {}

  private ws(): void {
    const s = this.s;
    let i = this.i;
    while (i < s.length && isWs(s.charCodeAt(i))) i++;
    this.i = i;
  }

  parse(): JsonValue {
    const s = this.s;
    const L = this.L;
    const stack: Frame[] = [];
    let value: JsonValue;
    for (;;) {
      // ---- parse the start of a value at this.i
      this.ws();
      if (this.i >= s.length) throw E.syntax();
      const c = s.charCodeAt(this.i);
      if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (stack.length + 1 > L.maxDepth) throw E.depth();
        this.i++;
        this.ws();
        if (c === 0x7b) {
          const obj = Object.create(null) as JsonObject;
          if (s.charCodeAt(this.i) === 0x7d /* } */) {
            this.i++;
            value = obj;
          } else {
            const frame: Frame = { obj, arr: null, key: '', count: 0 };
            this.memberKey(frame);
            stack.push(frame);
            continue;
          }
        } else {
          const arr: JsonValue[] = [];
          if (s.charCodeAt(this.i) === 0x5d /* ] */) {
            this.i++;
            value = arr;
          } else {
            stack.push({ obj: null, arr, key: '', count: 0 });
            continue;
          }
        }
      } else if (c === 0x22 /* " */) {
        value = this.string();
      } else if (c === 0x2d /* - */ || isDigit(c)) {
        value = this.number();
      } else if (s.startsWith('true', this.i)) {
        this.i += 4;
        value = true;
      } else if (s.startsWith('false', this.i)) {
        this.i += 5;
        value = false;
      } else if (s.startsWith('null', this.i)) {
        this.i += 4;
        value = null;
      } else {
        throw E.syntax();
      }

      // ---- a value is complete: attach it and close containers as far as possible
      for (;;) {
        const top = stack[stack.length - 1];
        if (top === undefined) {
          this.ws();
          if (this.i !== s.length) throw E.syntax();
          return value;
        }
        if (top.arr !== null) top.arr.push(value);
        else if (top.obj !== null) {
          top.obj[top.key] = value;
          top.count++;
        }
        this.ws();
        const d = s.charCodeAt(this.i);
        if (d === 0x2c /* , */) {
          this.i++;
          if (top.arr !== null) {
            if (top.arr.length >= L.maxElements) throw E.elements();
          } else {
            this.ws();
            this.memberKey(top);
          }
          break; // parse the next value
        }
        if (top.arr !== null && d === 0x5d) {
          this.i++;
          stack.pop();
          value = top.arr;
          continue;
        }
        if (top.obj !== null && d === 0x7d) {
          this.i++;
          stack.pop();
          value = top.obj;
          continue;
        }
        throw E.syntax();
      }
    }
  }

  /** Parses `"key" :` at this.i into frame.key, enforcing the member cap and uniqueness. */
  private memberKey(frame: Frame): void {
    if (this.s.charCodeAt(this.i) !== 0x22) throw E.syntax();
    if (frame.count >= this.L.maxMembers) throw E.members();
    const key = this.string();
    // Null-prototype object: `in` sees own keys only.
    if (frame.obj !== null && key in frame.obj) throw E.duplicate();
    this.ws();
    if (this.s.charCodeAt(this.i) !== 0x3a /* : */) throw E.syntax();
    this.i++;
    frame.key = key;
  }

  /** Parses a string literal starting at the opening quote. */
  private string(): string {
    const s = this.s;
    let i = this.i + 1;
    let start = i;
    let out = '';
    for (;;) {
      if (i >= s.length) throw E.syntax();
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        out += s.slice(start, i);
        this.i = i + 1;
        return out;
      }
      if (c < 0x20) throw E.syntax();
      if (c !== 0x5c /* \ */) {
        i++;
        continue;
      }
      out += s.slice(start, i);
      const e = s.charCodeAt(i + 1);
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
            if (s.charCodeAt(i) !== 0x5c || s.charCodeAt(i + 1) !== 0x75) throw E.surrogate();
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

  private hex4(at: number): number {
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const h = hexVal(this.s.charCodeAt(at + k));
      if (h < 0) throw E.syntax();
      v = (v << 4) | h;
    }
    return v;
  }

  /** Parses a number per RFC 8259 §6 and converts it as JSON.parse does. */
  private number(): number {
    const s = this.s;
    const start = this.i;
    let i = start;
    if (s.charCodeAt(i) === 0x2d) i++;
    const first = s.charCodeAt(i);
    if (first === 0x30) {
      i++;
    } else if (first >= 0x31 && first <= 0x39) {
      while (isDigit(s.charCodeAt(i))) i++;
    } else {
      throw E.syntax();
    }
    let integer = true;
    if (s.charCodeAt(i) === 0x2e /* . */) {
      integer = false;
      i++;
      if (!isDigit(s.charCodeAt(i))) throw E.syntax();
      while (isDigit(s.charCodeAt(i))) i++;
    }
    const ex = s.charCodeAt(i);
    if (ex === 0x65 || ex === 0x45) {
      integer = false;
      i++;
      const sign = s.charCodeAt(i);
      if (sign === 0x2b || sign === 0x2d) i++;
      if (!isDigit(s.charCodeAt(i))) throw E.syntax();
      while (isDigit(s.charCodeAt(i))) i++;
    }
    this.i = i;
    if (!integer && this.integerLiterals) return NaN;
    return Number(s.slice(start, i));
  }
}

/** True when `v` is a JSON object (not an array, not null). */
export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

