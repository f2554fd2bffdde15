/**
 * Byte-level recover-body parser (no JS strings for shard bytes): Go-shaped bodies, hostile
 * shapes (gaps G4: 31/33-element shards; values > 255; floats; duplicates; depth bombs),
 * and a round trip with `src/crypto`'s encoder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatRecoverBody } from '../crypto/encoding.js';
import { NexusApiError } from './errors.js';
import { assertValidShare, isAllZero, parseRecoverBody } from './shares.js';

const arr = (n: number, v = 7): string => `[${Array.from({ length: n }, () => v).join(',')}]`;
const enc = (s: string): Buffer => Buffer.from(s, 'utf8');

function rejects(body: string): void {
  assert.throws(() => parseRecoverBody(enc(body)), (e: unknown) => e instanceof NexusApiError && e.code === 'data_unmarshal_failure', body.slice(0, 60));
}

test('parses a Go-encoded recover body (keys sorted as strings, ids in order)', () => {
  const body = `{"shards":{"1":${arr(32, 1)},"10":${arr(32, 10)},"2":${arr(32, 2)}}}`;
  const r = parseRecoverBody(enc(body));
  assert.equal(r.err, undefined);
  assert.deepEqual(
    r.shares.map((s) => s.id),
    [1, 2, 10],
  );
  assert.deepEqual([...r.shares[2]!.value], Array(32).fill(10));
});

test('accepts whitespace, an empty err, and skips unknown members of any shape', () => {
  const body = ` {\n "epoch": 3, "extra": {"a": [1, {"b": null}], "c": "x\\"y\\u00e9"}, "shards" : { "3" : ${arr(32, 255)} } , "err": "" }\n`;
  const r = parseRecoverBody(enc(body));
  assert.equal(r.shares.length, 1);
  assert.equal(r.shares[0]!.id, 3);
  assert.equal(r.err, undefined);
});

test('reports the err code of an error body; shards null is an empty list', () => {
  const r = parseRecoverBody(enc('{"shards":null,"err":"api_internal_error"}'));
  assert.deepEqual(r.shares, []);
  assert.equal(r.err, 'api_internal_error');
  assert.equal(parseRecoverBody(enc('{"err":"<script>"}')).err, 'gen_general_failure');
});

test('G4: a shard with 31 or 33 elements is refused (Go would zero-fill / truncate)', () => {
  rejects(`{"shards":{"1":${arr(31)}}}`);
  rejects(`{"shards":{"1":${arr(33)}}}`);
  rejects(`{"shards":{"1":[]}}`);
});

test('elements must be plain integers 0..255', () => {
  for (const bad of ['256', '-1', '1.0', '1e2', '01', '"1"', 'null', 'true', '0x1']) {
    const elems = Array(32).fill('1');
    elems[5] = bad;
    rejects(`{"shards":{"1":[${elems.join(',')}]}}`);
  }
});

test('share ids must be canonical decimals 1..1000, without duplicates', () => {
  for (const id of ['0', '01', '-1', '1001', 'a', '1.5', '']) rejects(`{"shards":{"${id}":${arr(32)}}}`);
  rejects(`{"shards":{"1":${arr(32)},"1":${arr(32)}}}`);
  rejects(`{"shards":{"1":${arr(32)}},"shards":{"2":${arr(32)}}}`);
});

test('malformed JSON, trailing bytes and depth bombs are refused', () => {
  for (const b of ['', '{', '[]', '{"shards":{"1":' + arr(32) + '}', '{"shards":{}} x', '{"a":' + '['.repeat(100) + ']'.repeat(100) + '}', '{"a":"\u0001"}', "{'a':1}"]) {
    rejects(b);
  }
});

test('round trip: src/crypto formatRecoverBody → parseRecoverBody (property)', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 12 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      (ids, seed) => {
        const shares = ids.map((id, i) => ({ id, value: Uint8Array.from(seed, (b, j) => (b + i * 31 + j) & 0xff || 1) }));
        const body = formatRecoverBody(shares);
        const r = parseRecoverBody(body);
        assert.deepEqual(
          r.shares.map((s) => [s.id, [...s.value]]),
          [...shares].sort((a, b) => a.id - b.id).map((s) => [s.id, [...s.value]]),
        );
      },
    ),
    { numRuns: 200 },
  );
});

test('assertValidShare refuses id 0, wrong lengths and all-zero values', () => {
  const ok = new Uint8Array(32).fill(1);
  assert.doesNotThrow(() => assertValidShare(1, ok));
  for (const [id, v] of [
    [0, ok],
    [1001, ok],
    [1.5, ok],
    [1, new Uint8Array(31).fill(1)],
    [1, new Uint8Array(33).fill(1)],
    [1, new Uint8Array(32)],
  ] as const) {
    assert.throws(() => assertValidShare(id, v), { code: 'sdk_bad_shard' });
  }
  assert.equal(isAllZero(new Uint8Array(32)), true);
  assert.equal(isAllZero(ok), false);
});
