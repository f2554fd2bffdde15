/**
 * The strict JSON parser behind {@link parseJson} (json.ts), working on the body's bytes.
 *
 * A document that may hold key material is never turned into one JavaScript string: its
 * string literals are decoded one by one (after one check that the document is valid UTF-8),
 * integers of up to 15 digits are computed from their digits, and the arrays of the members
 * named as key material are read straight into a {@link JsonBytes}. So a share sent as
 * `"shard":[12,34,…]` exists only in the request's bytes (zeroed by the caller) and in one
 * `Uint8Array`: never in a string, which could not be wiped. (Other all-ASCII documents are
 * read as one string, whose slices are cheaper than decoding each literal: json-lex.ts.)
 */
import { E, JsonBytes, type JsonLimits, type JsonObject, type JsonValue, KEY_BYTES_CAPACITY, Lexer, isDigit } from './json-lex.js';

interface Frame {
  obj: JsonObject | null;
  arr: JsonValue[] | null;
  key: string;
  count: number;
}

export class Parser extends Lexer {

  constructor(
    b: Buffer,
    private readonly L: JsonLimits,
    integerLiterals: boolean,
    /** The members whose arrays are key material, by folded name ({@link foldName}). */
    private readonly keyMembers: { has(name: string): boolean } | undefined,
    /** Every {@link JsonBytes} made is pushed here, so a failed parse (or the caller) can zero them all. */
    readonly made: JsonBytes[],
  ) {
    super(b, integerLiterals, keyMembers !== undefined);
  }

  /** Parses the whole document. */
  parse(): JsonValue {
    return this.value(0, true, true);
  }

  /**
   * Parses one value at this.i, nested `base` containers deep. The top level (`whole`) must
   * then be followed only by whitespace. `keyAware`: key-material members are read as bytes.
   */
  private value(base: number, whole: boolean, keyAware: boolean): JsonValue {
    const b = this.b;
    const L = this.L;
    const stack: Frame[] = [];
    let value: JsonValue;
    for (;;) {
      // ---- parse the start of a value at this.i
      this.ws();
      const c = this.at(this.i);
      const top = stack[stack.length - 1];
      if (c === 0x5b && keyAware && top?.obj != null && this.keyMembers?.has(foldName(top.key)) === true) {
        value = this.keyBytes(base + stack.length + 1);
      } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (base + stack.length + 1 > L.maxDepth) throw E.depth();
        this.i++;
        this.ws();
        if (c === 0x7b) {
          const obj = Object.create(null) as JsonObject;
          if (this.at(this.i) === 0x7d /* } */) {
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
          if (this.at(this.i) === 0x5d /* ] */) {
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
      } else {
        value = this.word(c);
      }

      // ---- a value is complete: attach it and close containers as far as possible
      for (;;) {
        const top = stack[stack.length - 1];
        if (top === undefined) {
          if (!whole) return value;
          this.ws();
          if (this.i !== b.length) throw E.syntax();
          return value;
        }
        if (top.arr !== null) top.arr.push(value);
        else if (top.obj !== null) {
          top.obj[top.key] = value;
          top.count++;
        }
        this.ws();
        const d = this.at(this.i);
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
    if (this.at(this.i) !== 0x22) throw E.syntax();
    if (frame.count >= this.L.maxMembers) throw E.members();
    const key = this.string();
    // Null-prototype object: `in` sees own keys only.
    if (frame.obj !== null && key in frame.obj) throw E.duplicate();
    this.ws();
    if (this.at(this.i) !== 0x3a /* : */) throw E.syntax();
    this.i++;
    frame.key = key;
  }

  /**
   * A key-material array at this.i (`[`), `depth` containers deep: each element that is an
   * integer literal 0..255 goes straight into the bytes; any other element is parsed (so the
   * grammar and the caps still hold) and makes the value null.
   */
  private keyBytes(depth: number): JsonBytes {
    if (depth > this.L.maxDepth) throw E.depth();
    const out = new JsonBytes(new Uint8Array(KEY_BYTES_CAPACITY), 0);
    this.made.push(out);
    let ok = true;
    let n = 0;
    this.i++;
    this.ws();
    if (this.at(this.i) === 0x5d) this.i++;
    else {
      for (;;) {
        this.ws();
        const c = this.at(this.i);
        let v = -1;
        if (c === 0x2d || isDigit(c)) v = this.byteLiteral();
        // Not key-aware: whatever it holds, the array is already refused, and no key array
        // nests in another (so this recursion is one level deep, whatever the depth cap).
        else this.value(depth, false, false);
        if (v >= 0 && n < KEY_BYTES_CAPACITY) out.value![n] = v;
        else ok = false;
        n++;
        this.ws();
        const d = this.at(this.i);
        this.i++;
        if (d === 0x5d) break;
        if (d !== 0x2c) throw E.syntax();
        if (n >= this.L.maxElements) throw E.elements();
      }
    }
    out.length = n;
    if (!ok) {
      out.wipe();
      out.value = null;
    }
    return out;
  }





}

/**
 * A member name folded as Go matches field names (`EqualFold`, simple case folding), so
 * `"Shard"` and `"ſhard"` are the member `shard`: the schema refuses such a variant, and the
 * parser must still have read a key-material one as bytes, never numbers. Besides ASCII
 * letters only U+017F (ſ) and U+212A (Kelvin sign) fold onto ASCII ones; JavaScript's full
 * case mappings (`ß` → `ss`, `ı` → `i`) are not Go's, so they are not used.
 */
export function foldName(name: string): string {
  return name.replace(/[A-Z\u017f\u212a]/g, (c) => (c === '\u017f' ? 's' : c === '\u212a' ? 'k' : c.toLowerCase()));
}
