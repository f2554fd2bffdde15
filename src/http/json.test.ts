/**
 * Tests for the bounded JSON reader and parser (D4; SEC-01, SEC-03, SEC-04, SEC-06, SEC-07,
 * SEC-08, SEC-17, SEC-18). Property tests compare against JSON.parse for valid documents.
 */
import { describeStall, stallCheck } from '../../test/helpers/stall.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { ApiError } from '../protocol/errors.js';
import { readBody } from './body.js';
import { JsonBytes, JsonError, type JsonValue, isJsonObject, parseJson } from './json.js';
import { goJsonString } from './gojson.js';

/** Structural equality that also checks key order and -0, ignoring prototypes. */
function same(a: unknown, b: unknown): boolean {
  if (typeof a !== typeof b) return false;
  if (a === null || b === null || typeof a !== 'object') return Object.is(a, b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => same(x, bb[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function allNullProto(v: JsonValue): boolean {
  if (v === null || typeof v !== 'object') return true;
  if (Array.isArray(v)) return v.every(allNullProto);
  return Object.getPrototypeOf(v) === null && Object.values(v).every(allNullProto);
}

const rejects = (input: string | Uint8Array, reason?: string, limits = {}): void => {
  assert.throws(
    () => parseJson(typeof input === 'string' ? Buffer.from(input, 'utf8') : input, limits),
    (e: unknown) => e instanceof ApiError && e.code === 'api_bad_request' && e.status === 400 && (reason === undefined || e.reason === reason),
  );
};


test('D4: valid documents parse to the same value as JSON.parse (property)', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 8, stringUnit: 'grapheme' }), fc.boolean(), (v, pretty) => {
      const text = pretty ? JSON.stringify(v, null, 2) : JSON.stringify(v);
      const ours = parseJson(Buffer.from(text, 'utf8'), { maxElements: 1e6, maxMembers: 1e6, integerLiterals: false });
      assert.ok(same(ours, JSON.parse(text)));
      assert.ok(allNullProto(ours));
    }),
    { numRuns: 400 },
  );
});

test('D4: arbitrary text is accepted only if JSON.parse accepts it (property)', () => {
  const jsonish = fc.string({ unit: fc.constantFrom(...'{}[]":,0123456789.-+eEtrufalsn \\/u\t\n'.split('')), maxLength: 40 });
  fc.assert(
    fc.property(fc.oneof(jsonish, fc.string({ maxLength: 30 })), (text) => {
      let expected: unknown;
      let ok = true;
      try {
        expected = JSON.parse(text);
      } catch {
        ok = false;
      }
      try {
        const ours = parseJson(Buffer.from(text, 'utf8'), { integerLiterals: false });
        assert.ok(ok, 'accepted something JSON.parse rejects');
        assert.ok(same(ours, expected));
      } catch (e) {
        assert.ok(e instanceof JsonError || (e instanceof ApiError && e.code === 'api_bad_request'), 'only typed errors');
        // We may reject more (duplicates, lone surrogates, caps) but never throw anything else.
      }
    }),
    { numRuns: 2000 },
  );
});

test('D4: strict RFC 8259 — non-JSON forms are rejected with api_bad_request', () => {
  for (const bad of [
    '', ' ', '{', '}', '[1,]', '{"a":1,}', '[1 2]', '{"a" 1}', '{a:1}', "{'a':1}", '// c\n{}', '/* c */{}',
    '01', '+1', '.5', '1.', '1e', '-', 'NaN', 'Infinity', '-Infinity', 'undefined', 'True', 'nul',
    '"\t"', '"a\nb"', '"\\x41"', '"\\u12"', '"\\u12G4"', '"abc', '{} {}', '[] x', '"\\"',
  ]) {
    rejects(bad);
  }
});

test('SEC-17/SEC-18: BOM, invalid UTF-8, overlong encodings and lone surrogate escapes are rejected', () => {
  rejects(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]));
  rejects(Buffer.from([0x22, 0xff, 0x22]));
  rejects(Buffer.from([0x22, 0xc0, 0x80, 0x22])); // overlong NUL
  rejects(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])); // UTF-8-encoded surrogate
  rejects('"\\ud800"');
  rejects('"\\udc00"');
  rejects('"\\ud800\\u0041"');
  rejects('"\\ud800x"');
  assert.equal(parseJson(Buffer.from('"\\ud83d\\ude00"')), '😀');
  assert.equal(parseJson(Buffer.from('"😀"')), '😀');
});

test('D4: numbers convert exactly as JSON.parse does', () => {
  for (const n of ['0', '-0', '1e400', '-1e400', '9007199254740993', '1.5', '2147483648', '1E+2', '0.1e-3']) {
    assert.ok(Object.is(parseJson(Buffer.from(n), { integerLiterals: false }), JSON.parse(n)), n);
  }
});

test('SEC-09: with integerLiterals only integer literals are numbers (Go reads 1e2 and 1.0 into no int field)', () => {
  const opts = { integerLiterals: true };
  assert.ok(Number.isNaN(parseJson(Buffer.from('1e2'))), 'the default reads numbers as Go does');
  for (const n of ['0', '-0', '7', '-12', '2147483648', '9007199254740993']) {
    assert.ok(Object.is(parseJson(Buffer.from(n), opts), JSON.parse(n)), n);
  }
  for (const n of ['1e2', '1E+2', '1.0', '0.0', '-0.0', '1.5', '0.1e-3', '1e400']) {
    assert.ok(Number.isNaN(parseJson(Buffer.from(n), opts)), n);
  }
  // Still the same grammar: what is not a JSON number stays a syntax error.
  for (const n of ['1.', '.5', '01', '1e', '+1']) rejects(n, 'invalid_json', opts);
});

test('SEC-03: depth 32 passes, 33 is rejected', () => {
  const nest = (d: number) => '['.repeat(d) + ']'.repeat(d);
  assert.ok(Array.isArray(parseJson(Buffer.from(nest(32)))));
  rejects(nest(33), 'json_too_deep');
  const objNest = (d: number) => '{"a":'.repeat(d - 1) + '{}' + '}'.repeat(d - 1);
  assert.ok(parseJson(Buffer.from(objNest(32))) !== null);
  rejects(objNest(33), 'json_too_deep');
});

test('SEC-04: 1,000 members pass, 1,001 are rejected; 10,000 elements pass, 10,001 are rejected', () => {
  const obj = (n: number) => '{' + Array.from({ length: n }, (_, i) => `"k${i}":0`).join(',') + '}';
  assert.equal(Object.keys(parseJson(Buffer.from(obj(1000))) as object).length, 1000);
  rejects(obj(1001), 'json_too_many_members');
  const arr = (n: number) => '[' + Array.from({ length: n }, () => '0').join(',') + ']';
  assert.equal((parseJson(Buffer.from(arr(10_000))) as unknown[]).length, 10_000);
  rejects(arr(10_001), 'json_too_many_elements');
});

test('SEC-08: duplicate member names are rejected, at any depth', () => {
  rejects('{"path":"ok/x","path":"other/y"}', 'json_duplicate_member');
  rejects('{"a":{"b":1,"b":1}}', 'json_duplicate_member');
  rejects('{"__proto__":1,"__proto__":2}', 'json_duplicate_member');
  // Same name in different objects is fine.
  assert.ok(parseJson(Buffer.from('[{"a":1},{"a":2}]')));
});

test('SEC-06/SEC-07: __proto__ and constructor are ordinary keys that round-trip; no pollution', () => {
  const text = '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"toString":"x","hasOwnProperty":"y","prototype":"z"}';
  const v = parseJson(Buffer.from(text)) as Record<string, JsonValue>;
  assert.equal(Object.getPrototypeOf(v), null);
  assert.deepEqual(Object.keys(v), ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype']);
  assert.equal(Object.getPrototypeOf(v['__proto__'] as object), null);
  assert.equal((v['__proto__'] as Record<string, JsonValue>)['polluted'], 'yes');
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(goJsonString(v as never), text);
  // An inherited-looking member is not an own `path`.
  const w = parseJson(Buffer.from('{"__proto__":{"path":"spike/system/acl"}}')) as Record<string, JsonValue>;
  assert.equal(Object.prototype.hasOwnProperty.call(w, 'path'), false);
  assert.equal(w['path'], undefined);
});

test('SEC-01: byte cap — exactly the cap passes, cap + 1 is rejected before parsing', () => {
  const doc = (n: number) => '"' + 'a'.repeat(n - 2) + '"';
  assert.equal((parseJson(Buffer.from(doc(1024)), { maxBytes: 1024 }) as string).length, 1022);
  rejects(doc(1025), 'payload_too_large', { maxBytes: 1024 });
});

// The stall checks below fail only on a real stall (seconds: a recursive or quadratic parse of
// these inputs), never on scheduler noise of a loaded machine: see test/helpers/stall.ts.
test('SEC-03/SEC-04/SEC-08/SEC-06: hostile documents are answered without stalling the event loop', async () => {
  const deep = Buffer.from('['.repeat(100_000) + ']'.repeat(100_000));
  const deepObj = Buffer.from('{"a":'.repeat(100_000));
  const many = Buffer.from('{' + Array.from({ length: 200_000 }, (_, i) => `"${i.toString(36)}":0`).join(',') + '}');
  const dup = Buffer.from('{' + Array.from({ length: 999 }, (_, i) => `"k${i}":0`).join(',') + ',"k0":1}');
  const proto = Buffer.from('{"__proto__":{"isAdmin":true}}');
  const big = Buffer.from('[' + '"' + 'x'.repeat(900 * 1024) + '"' + ']');
  const stall = await stallCheck(async () => {
    for (const [buf, reason, limits] of [
      [deep, 'json_too_deep', {}],
      [deepObj, 'json_too_deep', {}],
      [many, 'json_too_many_members', { maxBytes: 8 * 1024 * 1024 }],
      [dup, 'json_duplicate_member', {}],
    ] as const) {
      assert.throws(() => parseJson(buf, limits), (e: unknown) => e instanceof ApiError && e.reason === reason);
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(Object.getPrototypeOf(parseJson(proto)), null);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(((parseJson(big) as string[])[0] as string).length, 900 * 1024);
  });
  assert.ok(stall.ok, describeStall(stall));
});

// ---- readBody

function lazyStream(totalBytes: number, chunk = 64 * 1024): { stream: Readable; pulled: () => number } {
  let produced = 0;
  const stream = new Readable({
    highWaterMark: chunk,
    read() {
      if (produced >= totalBytes) {
        this.push(null);
        return;
      }
      const n = Math.min(chunk, totalBytes - produced);
      produced += n;
      this.push(Buffer.alloc(n, 0x20));
    },
  });
  return { stream, pulled: () => produced };
}

test('SEC-01: a 64 MiB streamed body is cut at the cap without reading the rest', async () => {
  let pulledMax = 0;
  const stall = await stallCheck(async () => {
    const { stream, pulled } = lazyStream(64 * 1024 * 1024);
    await assert.rejects(readBody(stream, 1024 * 1024), (e: unknown) => e instanceof ApiError && e.reason === 'payload_too_large' && e.closeConnection && e.status === 400);
    await new Promise((r) => setTimeout(r, 50));
    pulledMax = Math.max(pulledMax, pulled());
    stream.destroy();
  });
  assert.ok(pulledMax <= 3 * 1024 * 1024, `read ${pulledMax} bytes`);
  assert.ok(stall.ok, describeStall(stall));
});

test('SEC-01: Content-Length over the cap is refused before any byte is read', async () => {
  const { stream, pulled } = lazyStream(2 * 1024 * 1024);
  const req = Object.assign(stream, { headers: { 'content-length': String(2 * 1024 * 1024) } });
  await assert.rejects(readBody(req, 1024 * 1024), (e: unknown) => e instanceof ApiError && e.reason === 'payload_too_large');
  assert.ok(pulled() <= 64 * 1024, `read ${pulled()} bytes`);
  stream.destroy();
});

test('SEC-01: a body of exactly the cap is read whole; cap + 1 is refused', async () => {
  const a = lazyStream(1000, 300);
  assert.equal((await readBody(a.stream, 1000)).length, 1000);
  const b = lazyStream(1001, 300);
  await assert.rejects(readBody(b.stream, 1000), (e: unknown) => e instanceof ApiError && e.reason === 'payload_too_large');
  b.stream.destroy();
});

test('readBody: a stream that errors mid-body is a 400 with connection close', async () => {
  const s = new Readable({ read() {} });
  const p = readBody(s, 1000);
  s.push(Buffer.from('{"a":'));
  s.destroy(new Error('boom'));
  await assert.rejects(p, (e: unknown) => e instanceof ApiError && e.reason === 'body_read_failed' && e.closeConnection);
});

// ---- key-material members (keyBytes) -------------------------------------------------------

const keyOpts = (made: JsonBytes[] = []) => ({ keyBytes: { members: new Set(['shard']), made } });
const ints = (xs: number[]): string => `[${xs.join(',')}]`;

test('P21 keyBytes: a key member\'s array is read into bytes; the same array elsewhere stays numbers', () => {
  const share = Array.from({ length: 32 }, (_, i) => (i * 37 + 5) % 256);
  const made: JsonBytes[] = [];
  const doc = parseJson(Buffer.from(`{"shard":${ints(share)},"other":${ints(share)},"nested":{"shard":[]}}`), keyOpts(made)) as Record<string, unknown>;
  assert.ok(doc.shard instanceof JsonBytes);
  assert.deepEqual([...doc.shard.value!], share);
  assert.equal(doc.shard.length, 32);
  assert.deepEqual(doc.other, share, 'a member not named stays an array of numbers');
  const nested = (doc.nested as Record<string, JsonBytes>).shard;
  assert.ok(nested instanceof JsonBytes && nested.length === 0, 'named members are found at any depth');
  assert.equal(made.length, 2);
  assert.ok(!isJsonObject(doc.shard as never), 'key bytes are not a JSON object to the schemas');
});

test('P21 keyBytes: elements that are not byte literals, or more than 32, leave no bytes (zeroed) but the grammar and caps still hold', () => {
  for (const el of ['256', '-1', '-0', '1.0', '1e1', '"7"', 'null', 'true', '[1]', '{"a":1}', '1000']) {
    const made: JsonBytes[] = [];
    const v = parseJson(Buffer.from(`{"shard":[9,${el},9]}`), keyOpts(made)) as Record<string, JsonBytes>;
    assert.equal(v.shard!.value, null, el);
    assert.equal(v.shard!.length, 3, el);
  }
  const long = parseJson(Buffer.from(`{"shard":${ints(new Array(33).fill(1))}}`), keyOpts()) as Record<string, JsonBytes>;
  assert.deepEqual([long.shard!.value, long.shard!.length], [null, 33]);
  for (const bad of ['{"shard":[1,]}', '{"shard":[1 2]}', '{"shard":[01]}', '{"shard":[1', '{"shard":[1,,2]}', '{"shard":[+1]}', '{"shard":[1]}x']) {
    rejects(bad, 'invalid_json', keyOpts());
  }
  rejects(`{"shard":[${'['.repeat(31)}${']'.repeat(31)}]}`, 'json_too_deep', keyOpts());
  rejects(`{"shard":${ints(new Array(11).fill(1))}}`, 'json_too_many_elements', { ...keyOpts(), maxElements: 10 });
});

test('P21 keyBytes: a parse that fails after key bytes were read zeroes them', () => {
  const made: JsonBytes[] = [];
  const share = new Array(32).fill(201);
  assert.throws(() => parseJson(Buffer.from(`{"shard":${ints(share)},"pending":{"shard":${ints(share)}},"x":tru}`), keyOpts(made)), JsonError);
  assert.equal(made.length, 2);
  assert.ok(made.every((m) => m.value!.every((x) => x === 0)));
});

test('P21 keyBytes: any 32 bytes, in any JSON spacing, come back exactly (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constantFrom('', ' ', '\n\t'), (bytes, sp) => {
      const text = `{${sp}"shard"${sp}:${sp}[${sp}${[...bytes].join(`${sp},${sp}`)}${sp}]${sp}}`;
      const v = parseJson(Buffer.from(text), keyOpts()) as Record<string, JsonBytes>;
      assert.deepEqual(v.shard!.value, bytes);
    }),
    { numRuns: 200 },
  );
});

test('P21: the digits of a share never appear in a string made while its body is parsed', () => {
  const share = Array.from({ length: 32 }, (_, i) => 200 + (i % 50));
  const digits = share.slice(0, 4).join(',');
  const made: string[] = [];
  const record = <T extends object>(proto: T, name: keyof T & string): (() => void) => {
    const orig = proto[name] as unknown as (...a: unknown[]) => unknown;
    (proto as Record<string, unknown>)[name] = function (this: unknown, ...a: unknown[]) {
      const out = orig.apply(this, a);
      if (typeof out === 'string') made.push(out);
      return out;
    };
    return () => {
      (proto as Record<string, unknown>)[name] = orig;
    };
  };
  const restore = [
    record(TextDecoder.prototype, 'decode'),
    record(Buffer.prototype, 'toString'),
    record(String.prototype, 'slice'),
    record(String.prototype, 'substring'),
  ];
  let v: Record<string, JsonBytes>;
  try {
    v = parseJson(Buffer.from(`{"id":1,"epoch":2,"commitments":"AAAA","shard":${ints(share)}}`), keyOpts()) as Record<string, JsonBytes>;
  } finally {
    for (const r of restore) r();
  }
  assert.deepEqual([...v.shard!.value!], share);
  assert.ok(made.length > 0, 'the spies saw the strings the parser made');
  assert.ok(!made.some((s) => s.includes(digits) || s.includes('200,')), 'no string holds the share\'s digits');
});

test('P21 keyBytes: members are matched as Go matches field names (any case, Unicode folding), so a variant is read as bytes too', () => {
  for (const name of ['Shard', 'SHARD', 'ſhard']) {
    const made: JsonBytes[] = [];
    const v = parseJson(Buffer.from(`{"${name}":${ints(new Array(32).fill(3))}}`), keyOpts(made)) as Record<string, unknown>;
    assert.ok(v[name] instanceof JsonBytes, name);
    assert.equal(made.length, 1, name);
  }
});

test('P21 keyBytes: very many key members (body cap raised) parse without a stack overflow, every one handed to the caller', () => {
  const n = 150_000;
  const made: JsonBytes[] = [];
  const text = `[${new Array(n / 10_000).fill(`[${new Array(10_000).fill('{"shard":[]}').join(',')}]`).join(',')}]`;
  const v = parseJson(Buffer.from(text), { ...keyOpts(made), maxBytes: 8 * 1024 * 1024 });
  assert.ok(Array.isArray(v));
  assert.equal(made.length, n);
});

test('P21 keyBytes: key arrays nested in key arrays do not recurse (deep nesting with a raised depth cap is a typed error or a value)', () => {
  const d = 5000;
  const text = `{"shard":[${'{"shard":['.repeat(d)}${']}'.repeat(d)}]}`;
  const v = parseJson(Buffer.from(text), { ...keyOpts(), maxDepth: 1e6 }) as Record<string, JsonBytes>;
  assert.equal(v.shard!.value, null, 'an array holding anything but bytes is refused');
});

test('SEC-18: a string input with a lone surrogate is refused, not silently replaced', () => {
  assert.throws(() => parseJson('"a\ud800b"'), JsonError);
  assert.equal(parseJson('"a\ud83d\ude00b"'), 'a😀b');
});
