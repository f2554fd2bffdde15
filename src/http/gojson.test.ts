/**
 * gojson.ts: Go map keys are sorted by their UTF-8 bytes. The fast comparison for keys below
 * U+D800 must give exactly the byte order, and keys with surrogate pairs, lone surrogates and
 * U+E000…U+FFFF characters must still sort as their UTF-8 encodings do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { goJsonString } from './gojson.js';

const utf8Order = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

test('map keys are written in UTF-8 byte order (Go), whatever the characters', () => {
  // Characters Go and JSON.stringify escape alike (no <, >, &, quotes, backslash, controls,
  // U+2028/9), from every UTF-16 range: ASCII, below the surrogates, U+E000…U+FFFF, astral.
  const cp = fc.oneof(
    fc.integer({ min: 0x20, max: 0x7e }).filter((c) => c !== 0x22 && c !== 0x5c && c !== 0x3c && c !== 0x3e && c !== 0x26),
    fc.integer({ min: 0x80, max: 0xd7ff }).filter((c) => c !== 0x2028 && c !== 0x2029),
    fc.integer({ min: 0xe000, max: 0xffff }),
    fc.integer({ min: 0x10000, max: 0x10ffff }),
  );
  const key = fc.array(cp, { maxLength: 5 }).map((cps) => String.fromCodePoint(...cps));
  fc.assert(
    fc.property(fc.uniqueArray(key, { maxLength: 8 }), (keys) => {
      const m = new Map(keys.map((k, i) => [k, i]));
      const sorted = [...keys].sort(utf8Order);
      const expected = `{${sorted.map((k) => `${JSON.stringify(k)}:${m.get(k)}`).join(',')}}`;
      assert.equal(goJsonString(m), expected);
    }),
    { numRuns: 3000 },
  );
});

test('map keys with lone surrogates still sort by their UTF-8 form (U+FFFD)', () => {
  const m = new Map<string, number>([['\ud800', 1], ['\uffff', 2], ['\ufffc', 3]]);
  assert.equal(goJsonString(m), '{"\ufffc":3,"\\ufffd":1,"\uffff":2}');
});

test('map keys: "10" < "2" < "Z" < "a" < U+E000 < U+FFFF < U+1F600 (byte order, not UTF-16)', () => {
  const m = new Map<string, number>([['\ud83d\ude00', 1], ['\uffff', 2], ['\ue000', 3], ['a', 4], ['Z', 5], ['2', 6], ['10', 7]]);
  assert.equal(goJsonString(m), '{"10":7,"2":6,"Z":5,"a":4,"\ue000":3,"\uffff":2,"\ud83d\ude00":1}');
});
