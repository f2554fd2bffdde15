/**
 * SPIKE share encodings: fixed byte-for-byte examples written from SPIKE's documented
 * formats, round trips, and hostile inputs (G4: 31/33-element shards).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CryptoError, formatRecoverBody, formatRecoveryFile, formatRestoreBody, formatShardBody, formatShardJsonArray,
  parseRecoveryFile, recoveryFileName, shareValueFromJsonArray, shareValueToJsonArray, sharesFromRecoverMap,
  sharesToRecoverMap, type Share,
} from './index.js';

const ascii = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const v123 = (): Uint8Array => Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const badEncoding = (e: unknown): boolean => e instanceof CryptoError && e.code === 'crypto_bad_encoding';
const share32 = fc.record({ id: fc.integer({ min: 1, max: 1000 }), value: fc.uint8Array({ minLength: 32, maxLength: 32 }) });

test('ENC: fixed example, share id 1 with value 01 02 … 20, byte for byte', () => {
  const s: Share = { id: 1, value: v123() };
  const arr = '[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32]';
  assert.equal(ascii(formatShardJsonArray(s.value)), arr);
  assert.equal(ascii(formatShardBody(s.value)), `{"shard":${arr}}`);
  assert.equal(ascii(formatRestoreBody(s)), `{"id":1,"shard":${arr}}`);
  const file = formatRecoveryFile(s);
  assert.ok(Buffer.isBuffer(file));
  assert.deepEqual(file, Buffer.from('spike:1:0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20', 'latin1'));
  assert.equal(recoveryFileName(1), 'spike.recovery.1.txt');
  assert.deepEqual(shareValueToJsonArray(s.value), Array.from({ length: 32 }, (_, i) => i + 1));
});

test('ENC: edge bytes 0 and 255 and the recover map in Go key order ("1","10","2")', () => {
  const v = new Uint8Array(32);
  v[0] = 255;
  v[31] = 10;
  assert.equal(ascii(formatShardJsonArray(v)), '[255' + ',0'.repeat(30) + ',10]');
  const shares: Share[] = [2, 10, 1].map((id) => ({ id, value: new Uint8Array(32).fill(id) }));
  const row = (b: number): string => '[' + Array(32).fill(b).join(',') + ']';
  assert.equal(ascii(formatRecoverBody(shares)), `{"shards":{"1":${row(1)},"10":${row(10)},"2":${row(2)}}}`);
  assert.deepEqual(JSON.parse(ascii(formatRecoverBody(shares))), { shards: sharesToRecoverMap(shares) });
  assert.throws(() => formatRecoverBody([shares[0]!, shares[0]!]), badEncoding);
});

test('ENC: round trips (JSON array, recovery file, recover map) are identical', () => {
  fc.assert(fc.property(share32, (s) => {
    assert.equal(ascii(formatShardJsonArray(s.value)), JSON.stringify(Array.from(s.value)));
    assert.deepEqual(shareValueFromJsonArray(JSON.parse(ascii(formatShardJsonArray(s.value)))), s.value);
    const back = parseRecoveryFile(formatRecoveryFile(s));
    assert.equal(back.id, s.id);
    assert.equal(hex(back.value), hex(s.value));
    assert.equal(ascii(formatRecoveryFile(s)), `spike:${s.id}:${hex(s.value)}`);
  }), { numRuns: 200 });
  fc.assert(fc.property(fc.uniqueArray(share32, { selector: (s) => s.id, maxLength: 8 }), (shares) => {
    const parsed = sharesFromRecoverMap(JSON.parse(ascii(formatRecoverBody(shares))).shards);
    const want = [...shares].sort((a, b) => a.id - b.id).map((s) => [s.id, hex(s.value)]);
    assert.deepEqual(parsed.map((s) => [s.id, hex(s.value)]), want);
  }), { numRuns: 100 });
});

test('SSS-07/G4: JSON shards must have exactly 32 integers 0..255', () => {
  const ok = Array.from({ length: 32 }, () => 7);
  for (const bad of [
    [], ok.slice(1), [...ok, 7], [...ok, ...ok], [...ok.slice(1), 256], [...ok.slice(1), -1], [...ok.slice(1), 1.5],
    [...ok.slice(1), '7'], [...ok.slice(1), null], 'AQID', null, undefined, { 0: 1, length: 32 }, new Uint8Array(32),
  ]) {
    assert.throws(() => shareValueFromJsonArray(bad), badEncoding);
  }
  assert.throws(() => formatShardJsonArray(new Uint8Array(31)), badEncoding);
  assert.throws(() => formatRestoreBody({ id: 0, value: new Uint8Array(32) }), badEncoding);
});

test('ENC: recovery file parsing accepts whitespace and uppercase hex, rejects everything else', () => {
  const good = 'spike:3:' + 'ab'.repeat(32);
  for (const t of [good, good + '\n', good + '\r\n', '  ' + good + ' \n', 'spike:3:' + 'AB'.repeat(32), 'spike:003:' + 'ab'.repeat(32)]) {
    const s = parseRecoveryFile(Buffer.from(t, 'latin1'));
    assert.equal(s.id, 3);
    assert.equal(hex(s.value), 'ab'.repeat(32));
  }
  for (const t of [
    '', 'spike:3', 'spike:3:', 'spike::' + 'ab'.repeat(32), 'spike:0:' + 'ab'.repeat(32), 'spike:1001:' + 'ab'.repeat(32),
    'spike:-1:' + 'ab'.repeat(32), 'spike:+1:' + 'ab'.repeat(32), 'spike:9999999:' + 'ab'.repeat(32),
    'spike:3:' + 'ab'.repeat(31), 'spike:3:' + 'ab'.repeat(33), 'spike:3:' + 'ab'.repeat(31) + 'ag', 'spike:3:' + 'ab'.repeat(31) + 'a',
    'Spike:3:' + 'ab'.repeat(32), 'spike:3:' + 'ab'.repeat(32) + ':x', 'spike:3 :' + 'ab'.repeat(32), 'spike:3:' + 'ab'.repeat(16) + ' ' + 'ab'.repeat(16),
  ]) {
    assert.throws(() => parseRecoveryFile(Buffer.from(t, 'latin1')), badEncoding, JSON.stringify(t));
  }
});

test('ENC: recover map rejects non-canonical keys and bad shards', () => {
  const row = Array(32).fill(1);
  for (const bad of [null, [], [row], { '0': row }, { '01': row }, { '1001': row }, { x: row }, { '1': row.slice(1) }, { '-1': row }, { '1.0': row }]) {
    assert.throws(() => sharesFromRecoverMap(bad), badEncoding, JSON.stringify(bad));
  }
  assert.equal(sharesFromRecoverMap({ '2': row, '1': row }).map((s) => s.id).join(), '1,2');
});

test('ENC: error messages never echo the input', () => {
  const canary = 'spike:3:' + 'c0ffee'.repeat(10) + 'zzzz';
  try {
    parseRecoveryFile(Buffer.from(canary, 'latin1'));
    assert.fail('parsed');
  } catch (e) {
    assert.ok(e instanceof CryptoError);
    assert.ok(!e.message.includes('c0ffee') && !e.message.includes('3'));
  }
});
