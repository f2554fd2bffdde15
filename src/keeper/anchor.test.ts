/** AnchorHolder: latest wins, bounded size, empty by default. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnchorHolder } from './anchor.js';
import { MAX_ANCHOR_BYTES } from '../protocol/index.js';

test('anchor holder: empty until set; keeps the latest (not the largest); clear forgets', () => {
  const h = new AnchorHolder();
  assert.equal(h.base64(), undefined);
  assert.equal(h.set(Buffer.from([9, 9, 9])), true);
  assert.equal(h.set(Buffer.from([1])), true);
  assert.equal(h.base64(), Buffer.from([1]).toString('base64'));
  h.clear();
  assert.equal(h.base64(), undefined);
});

test('anchor holder: refuses empty and oversized anchors, keeping what it held', () => {
  const h = new AnchorHolder();
  h.set(Buffer.from([7]));
  assert.equal(h.set(Buffer.alloc(0)), false);
  assert.equal(h.set(Buffer.alloc(MAX_ANCHOR_BYTES + 1, 1)), false);
  assert.equal(h.base64(), Buffer.from([7]).toString('base64'));
  assert.equal(h.set(Buffer.alloc(MAX_ANCHOR_BYTES, 1)), true);
});

test('anchor holder: holds its own copy of the bytes', () => {
  const h = new AnchorHolder();
  const b = Buffer.from([1, 2, 3]);
  h.set(b);
  b.fill(0);
  assert.equal(h.base64(), Buffer.from([1, 2, 3]).toString('base64'));
});
