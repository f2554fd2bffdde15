/**
 * Tiny declarative validators for request bodies parsed by {@link parseJson}.
 *
 * Semantics (chosen to stay compatible with Go `encoding/json` structs on the other side while
 * being strict where Go is lax):
 * - unknown members are ignored, as in Go; but a member whose name differs from a known field
 *   only by letter case (Go would have used it: its key matching is case-insensitive) is
 *   rejected as ambiguous instead of being silently dropped;
 * - wrong JSON types are rejected (400), including `null` for required fields; `null` is
 *   accepted only where a schema says `nullable` (Go pointers, slices and maps);
 * - integers must be safe integers (no `1.5`, `1e400`, `9007199254740993`);
 * - only own members are read (objects from the parser have a null prototype anyway);
 * - `[]byte` fields are strict standard base64 with padding; `[32]byte` fields are arrays of
 *   exactly 32 integers 0..255 (Go zero-fills short arrays and drops extras).
 * Failures are 400 (bad-request code) {@link ApiError}s whose message names the schema field
 * (a name from this code, never from the input) and never the value.
 */
import { ApiError, REASON, errorCode } from './errors.js';
import { JsonBytes, type JsonObject, type JsonParseOptions, type JsonValue, foldName, isJsonObject, parseJson } from './json.js';

/** A validator from a JSON member value (`undefined` = absent) to `T`. */
export interface Schema<T> {
  readonly describe: string;
  parse(v: JsonValue | undefined, at: string): T;
  /** This schema reads key material ({@link bytes32}): the member holding it is a key member. */
  readonly keyMaterial?: true;
  /**
   * Member names, at any depth of the value this schema reads, whose arrays are key material:
   * the parser must read them as bytes (`parseJson`'s `keyBytes`, fed from here).
   */
  readonly keyMembers?: ReadonlySet<string>;
}
export type Infer<S> = S extends Schema<infer T> ? T : never;

/** The error every schema throws. */
class SchemaError extends ApiError {
  constructor(at: string, problem: string) {
    super(errorCode('badRequest'), `invalid request: ${at === '' ? 'body' : at} ${problem}`, {
      reason: REASON.invalidBody,
      expose: true,
    });
  }
}

function required(v: JsonValue | undefined, at: string): asserts v is JsonValue {
  if (v === undefined) throw new SchemaError(at, 'is missing');
  if (v === null) throw new SchemaError(at, 'must not be null');
}

function mk<T>(describe: string, parse: (v: JsonValue | undefined, at: string) => T, inner?: Schema<unknown>): Schema<T> {
  if (inner === undefined || (inner.keyMaterial === undefined && inner.keyMembers === undefined)) return { describe, parse };
  return { describe, parse, keyMaterial: inner.keyMaterial, keyMembers: inner.keyMembers };
}

/** A container whose entries have no fixed member name cannot hold key material (the parser finds it by name). */
function noUnnamedKeys(item: Schema<unknown>): void {
  if (item.keyMaterial === true) throw new Error('key material must be a named object member');
}

interface StringOpts {
  minLength?: number;
  maxLength?: number;
  /** Extra check; throw an ApiError to reject. */
  check?: (v: string) => void;
}

interface IntOpts {
  min?: number;
  max?: number;
  /** A Go unsigned field (`byte`, `uint`): `-0` is refused too, as Go's ParseUint refuses a sign. */
  unsigned?: boolean;
}

function str(opts: StringOpts = {}): Schema<string> {
  return mk('string', (v, at) => {
    required(v, at);
    if (typeof v !== 'string') throw new SchemaError(at, 'must be a string');
    if (opts.minLength !== undefined && v.length < opts.minLength) throw new SchemaError(at, 'is too short');
    if (opts.maxLength !== undefined && v.length > opts.maxLength) throw new SchemaError(at, 'is too long');
    opts.check?.(v);
    return v;
  });
}

function int(opts: IntOpts = {}): Schema<number> {
  return mk('integer', (v, at) => {
    required(v, at);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new SchemaError(at, 'must be a safe integer');
    if (opts.min !== undefined && v < opts.min) throw new SchemaError(at, 'is out of range');
    if (opts.max !== undefined && v > opts.max) throw new SchemaError(at, 'is out of range');
    if (Object.is(v, -0)) {
      if (opts.unsigned === true) throw new SchemaError(at, 'is out of range');
      return 0;
    }
    return v;
  });
}

function bool(): Schema<boolean> {
  return mk('boolean', (v, at) => {
    required(v, at);
    if (typeof v !== 'boolean') throw new SchemaError(at, 'must be a boolean');
    return v;
  });
}

/** Absent → `dflt` (or undefined). `null` is still rejected unless the inner schema allows it. */
function optional<T>(inner: Schema<T>): Schema<T | undefined>;
function optional<T>(inner: Schema<T>, dflt: T): Schema<T>;
function optional<T>(inner: Schema<T>, dflt?: T): Schema<T | undefined> {
  return mk(`optional ${inner.describe}`, (v, at) => (v === undefined ? dflt : inner.parse(v, at)), inner);
}

/** `null` → `ifNull` (Go: nil pointer / slice / map). */
function nullable<T, N>(inner: Schema<T>, ifNull: N): Schema<T | N> {
  return mk(`nullable ${inner.describe}`, (v, at) => (v === null ? ifNull : inner.parse(v, at)), inner);
}

function array<T>(item: Schema<T>, opts: { maxItems?: number; minItems?: number } = {}): Schema<T[]> {
  noUnnamedKeys(item);
  return mk(`array of ${item.describe}`, (v, at) => {
    required(v, at);
    if (!Array.isArray(v)) throw new SchemaError(at, 'must be an array');
    if (opts.maxItems !== undefined && v.length > opts.maxItems) throw new SchemaError(at, 'has too many items');
    if (opts.minItems !== undefined && v.length < opts.minItems) throw new SchemaError(at, 'has too few items');
    const out: T[] = new Array<T>(v.length);
    for (let k = 0; k < v.length; k++) out[k] = item.parse(v[k], `${at}[]`);
    return out;
  }, item);
}

/** A JSON object used as a Go map[string]T → `Map` (no prototype hazards). */
function record<T>(
  value: Schema<T>,
  opts: { maxEntries?: number; minEntries?: number; key?: (k: string) => void } = {},
): Schema<Map<string, T>> {
  noUnnamedKeys(value);
  return mk(`map of ${value.describe}`, (v, at) => {
    required(v, at);
    if (!isJsonObject(v)) throw new SchemaError(at, 'must be an object');
    const keys = Object.keys(v);
    if (opts.maxEntries !== undefined && keys.length > opts.maxEntries) throw new SchemaError(at, 'has too many entries');
    if (opts.minEntries !== undefined && keys.length < opts.minEntries) throw new SchemaError(at, 'has too few entries');
    const out = new Map<string, T>();
    for (const k of keys) {
      opts.key?.(k);
      out.set(k, value.parse(v[k], `${at}.*`));
    }
    return out;
  }, value);
}

type Fields = Record<string, Schema<unknown>>;
type ObjectOf<F extends Fields> = { [K in keyof F]: Infer<F[K]> };

/** A Go struct: known fields validated, unknown ignored, case-variants of known names rejected. */
function object<F extends Fields>(fields: F): Schema<ObjectOf<F>> {
  const names = Object.keys(fields);
  // Go matches member names case-insensitively with Unicode folding (`ſ` is `s`, `K` is `k`).
  const lower = new Map(names.map((n) => [foldName(n), n]));
  const keyMembers = new Set<string>();
  for (const name of names) {
    const f = fields[name] as Schema<unknown>;
    if (f.keyMaterial === true) keyMembers.add(foldName(name));
    for (const m of f.keyMembers ?? []) keyMembers.add(m);
  }
  const parse = (v: JsonValue | undefined, at: string): ObjectOf<F> => {
    required(v, at);
    if (!isJsonObject(v)) throw new SchemaError(at, 'must be an object');
    const o: JsonObject = v;
    for (const k of Object.keys(o)) {
      if (Object.prototype.hasOwnProperty.call(fields, k)) continue;
      const known = lower.get(foldName(k));
      if (known !== undefined) throw new SchemaError(at === '' ? known : `${at}.${known}`, 'is given with different letter case');
    }
    const out = Object.create(null) as Record<string, unknown>;
    try {
      for (const name of names) {
        const f = fields[name] as Schema<unknown>;
        const val = Object.prototype.hasOwnProperty.call(o, name) ? o[name] : undefined;
        out[name] = f.parse(val, at === '' ? name : `${at}.${name}`);
      }
    } catch (e) {
      // A later field failed: bytes already decoded (a share, a nonce), at any depth, go nowhere: zero them.
      zeroBytes(out, 0);
      throw e;
    }
    return out as ObjectOf<F>;
  };
  return keyMembers.size === 0 ? { describe: 'object', parse } : { describe: 'object', parse, keyMembers };
}

/** Zeroes every byte buffer in a validated body (objects, arrays and maps the schema built; bounded depth). */
export function zeroBodyBytes(v: unknown): void {
  zeroBytes(v, 0);
}

function zeroBytes(v: unknown, depth: number): void {
  if (v instanceof Uint8Array) v.fill(0);
  else if (depth < 16 && v instanceof Map) for (const x of v.values()) zeroBytes(x, depth + 1);
  else if (depth < 16 && typeof v === 'object' && v !== null) for (const x of Object.values(v)) zeroBytes(x, depth + 1);
}

const B64 = new Uint8Array(128).fill(0);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') B64[c.charCodeAt(0)] = 1;

/** True when `s` is canonical-alphabet standard base64 with correct padding. */
function isStdBase64(s: string): boolean {
  if (s.length % 4 !== 0) return false;
  let pad = 0;
  if (s.endsWith('==')) pad = 2;
  else if (s.endsWith('=')) pad = 1;
  for (let i = 0; i < s.length - pad; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || B64[c] !== 1) return false;
  }
  return true;
}

/** Go `[]byte`: standard base64 string → Buffer. `null` only if wrapped in `nullable`. */
function base64(opts: { maxBytes?: number; exactBytes?: number } = {}): Schema<Buffer> {
  return mk('base64 string', (v, at) => {
    required(v, at);
    if (typeof v !== 'string' || !isStdBase64(v)) throw new SchemaError(at, 'must be standard base64');
    const decodedLen = (v.length / 4) * 3 - (v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0);
    if (opts.maxBytes !== undefined && decodedLen > opts.maxBytes) throw new SchemaError(at, 'is too large');
    if (opts.exactBytes !== undefined && decodedLen !== opts.exactBytes) throw new SchemaError(at, 'has the wrong length');
    return Buffer.from(v, 'base64');
  });
}

/**
 * Go `[32]byte`: exactly 32 integers 0..255 → a fresh 32-byte Buffer (caller zeroes it). Such
 * bytes are key material (a share): the parser reads the member straight into bytes (never a
 * string; see {@link Schema.keyMembers}) and they are zeroed here once copied.
 */
function bytes32(opts: { nonZero?: boolean } = {}): Schema<Buffer> {
  const parse = (v: JsonValue | undefined, at: string): Buffer => {
    required(v, at);
    // A plain array here means the document was parsed without keyBytes: a defect, not input.
    if (Array.isArray(v)) throw new Error(`key material at ${at} was parsed as numbers`);
    if (!(v instanceof JsonBytes) || v.length !== 32) throw new SchemaError(at, 'must be an array of 32 integers');
    try {
      if (v.value === null) throw new SchemaError(at, 'must be an array of 32 integers 0..255');
      let any = 0;
      for (let k = 0; k < 32; k++) any |= v.value[k]!;
      if (opts.nonZero === true && any === 0) throw new SchemaError(at, 'must not be all zero');
      const out = Buffer.alloc(32);
      out.set(v.value);
      return out;
    } finally {
      v.wipe();
    }
  };
  return { describe: 'array of 32 bytes', parse, keyMaterial: true };
}

/** An object with no fields we read (`{}` requests). Any JSON object passes. */
const empty = (): Schema<Record<string, never>> => object({}) as Schema<Record<string, never>>;

export const s = {
  string: str,
  int,
  bool,
  optional,
  nullable,
  array,
  record,
  object,
  base64,
  bytes32,
  empty,
} as const;

/**
 * Parses JSON bytes and validates them against a top-level schema. The members the schema
 * names as key material are read as bytes, never as numbers or text; the parser's copies are
 * zeroed before this returns (the schema hands out its own).
 */
export function parseBody<T>(schema: Schema<T>, raw: Uint8Array, options: Omit<JsonParseOptions, 'keyBytes'> = {}): T {
  const members = schema.keyMembers;
  if (members === undefined) return schema.parse(parseJson(raw, options), '');
  const made: JsonBytes[] = [];
  try {
    return schema.parse(parseJson(raw, { ...options, keyBytes: { members, made } }), '');
  } finally {
    for (const m of made) m.wipe();
  }
}
