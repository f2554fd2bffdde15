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
 *
 * It reads the bytes themselves (json-parser.ts): a document that may hold key material is
 * never turned into one string, and the arrays of the members named in
 * {@link JsonParseOptions.keyBytes} go straight into {@link JsonBytes}, so a share never
 * becomes a string, which could not be wiped.
 */
import { E, JsonBytes, type JsonLimits, type JsonObject, type JsonValue } from './json-lex.js';
import { Parser } from './json-parser.js';

export { JsonBytes, JsonError, type JsonLimits, type JsonObject, type JsonValue } from './json-lex.js';
export { foldName } from './json-parser.js';

/** Which member names are key material (a `Set` of names, or a rule). */
export interface KeyMemberNames {
  /** `name` is already folded ({@link foldName}): matching ignores case, as Go's does. */
  has(name: string): boolean;
}

/** Where key-material arrays go: see {@link JsonParseOptions.keyBytes}. */
export interface KeyBytesOption {
  /** The member names (at any depth; folded, see {@link foldName}) whose array value is key material. */
  members: KeyMemberNames;
  /** Every {@link JsonBytes} made is pushed here; the caller zeroes them all once done. */
  made: JsonBytes[];
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
  /**
   * Members whose array value is key material (a share): read straight into a
   * {@link JsonBytes} instead of an array of numbers. A failed parse zeroes them itself.
   */
  keyBytes?: KeyBytesOption;
}

/** The defaults of D4, in one place. */
export const DEFAULT_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({
  maxBytes: 1024 * 1024,
  maxDepth: 32,
  maxMembers: 1000,
  maxElements: 10_000,
});

/**
 * Parses one JSON document from UTF-8 bytes (or a string, which is encoded first) under the
 * limits. Throws {@link JsonError}.
 */
export function parseJson(input: Uint8Array | string, options: JsonParseOptions = {}): JsonValue {
  const L: JsonLimits = {
    maxBytes: options.maxBytes ?? DEFAULT_JSON_LIMITS.maxBytes,
    maxDepth: options.maxDepth ?? DEFAULT_JSON_LIMITS.maxDepth,
    maxMembers: options.maxMembers ?? DEFAULT_JSON_LIMITS.maxMembers,
    maxElements: options.maxElements ?? DEFAULT_JSON_LIMITS.maxElements,
  };
  if (typeof input === 'string') {
    if (input.length > L.maxBytes) throw E.tooLarge();
    // Encoding would turn a lone surrogate into U+FFFD silently.
    if (!(input as string & { isWellFormed(): boolean }).isWellFormed()) throw E.surrogate();
  }
  const b = typeof input === 'string' ? Buffer.from(input, 'utf8')
    : Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (b.byteLength > L.maxBytes) throw E.tooLarge();
  const keyBytes = options.keyBytes;
  const p = new Parser(b, L, options.integerLiterals !== false, keyBytes?.members, keyBytes?.made ?? []);
  try {
    return p.parse();
  } catch (e) {
    for (const m of p.made) m.wipe();
    throw e;
  }
}

/** True when `v` is a JSON object (not an array, not null, not key bytes). */
export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonBytes);
}
