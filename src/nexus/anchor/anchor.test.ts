/**
 * Rollback detection, pure parts: the anchor MAC (seal/open under `rollback-anchor/v1`; a
 * record of another key, a tampered counter or MAC, a short record never verify) and the
 * decision (only verified Keeper anchors count; Keepers without one never cause a refusal).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../crypto/index.js';
import { anchorCounter } from '../../store/index.js';
import { AnchorKey } from './mac.js';
import { decideRollback } from './decide.js';

test('anchor mac: seal/open round trip; the counter is readable without the key', () => {
  const root = RootKey.generate();
  const k = new AnchorKey(root);
  const r = k.seal(42n);
  assert.equal(anchorCounter(r), 42n);
  assert.equal(k.open(r), 42n);
  assert.equal(k.open(k.seal(0n)), 0n);
  k.destroy();
  root.destroy();
});

test('anchor mac: another key, a raised counter, a flipped MAC bit, a cut record: no counter', () => {
  const root = RootKey.generate();
  const other = RootKey.generate();
  const k = new AnchorKey(root);
  const o = new AnchorKey(other);
  const r = Buffer.from(k.seal(7n));
  assert.equal(o.open(r), undefined);
  const raised = Buffer.from(r);
  raised.writeBigUInt64BE(1000n, 1);
  assert.equal(k.open(raised), undefined);
  const flipped = Buffer.from(r);
  flipped[flipped.length - 1]! ^= 1;
  assert.equal(k.open(flipped), undefined);
  assert.equal(k.open(r.subarray(0, r.length - 1)), undefined);
  assert.equal(k.open(null), undefined);
  assert.equal(k.open(Buffer.alloc(0)), undefined);
  k.destroy();
  o.destroy();
  root.destroy();
  other.destroy();
});

test('anchor mac: the key is derived (the same root verifies the same records; the key never prints; every record is unique)', () => {
  const root = RootKey.generate();
  const a = new AnchorKey(root);
  const b = new AnchorKey(root);
  assert.equal(b.open(a.seal(5n)), 5n);
  assert.notDeepEqual(a.seal(5n), a.seal(5n)); // the nonce: two histories never share a record
  assert.equal(JSON.stringify({ a }), '{"a":"[AnchorKey]"}');
  a.destroy();
  b.destroy();
  root.destroy();
});

test('decide: a verified keeper counter above the store is a rollback', () => {
  const v = decideRollback({ store: 10n, storeTampered: false, keepers: [12n, undefined, 9n] });
  assert.equal(v.rollback, true);
  assert.equal(v.keeperMax, 12n);
  assert.equal(v.verified, 2);
});

test('decide: equal or lower keeper counters pass (the store is at or ahead of the last push)', () => {
  assert.equal(decideRollback({ store: 10n, storeTampered: false, keepers: [10n, 10n, 3n] }).rollback, false);
  assert.equal(decideRollback({ store: 11n, storeTampered: false, keepers: [10n] }).rollback, false);
});

test('decide: keepers without an anchor (restarted, new) never refuse, even against an empty store', () => {
  assert.equal(decideRollback({ store: undefined, storeTampered: false, keepers: [undefined, undefined, undefined] }).rollback, false);
  assert.equal(decideRollback({ store: 5n, storeTampered: false, keepers: [] }).rollback, false);
});

test('decide: anchors that do not verify are ignored (a forged one cannot lock Nexus out)', () => {
  const v = decideRollback({ store: 1n, storeTampered: false, keepers: ['invalid', 'invalid', undefined] });
  assert.equal(v.rollback, false);
  assert.equal(v.invalid, 2);
});

test('decide: a store without a (verified) record counts as 0: any verified keeper anchor refuses', () => {
  assert.equal(decideRollback({ store: undefined, storeTampered: true, keepers: [1n] }).rollback, true);
  assert.equal(decideRollback({ store: undefined, storeTampered: false, keepers: [3n] }).rollback, true);
});
