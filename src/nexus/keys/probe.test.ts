/** The status probe's decision: which Keeper needs its share pushed at once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { staleReason } from './probe.js';

const st = (epoch: number | null, id: number | null) => ({ epoch, id, pending: null, anchor: undefined });

test('probe: an empty keeper, another epoch or another share id needs a push; the current share does not', () => {
  assert.equal(staleReason(st(null, null), 2, 1), 'empty');
  assert.equal(staleReason(st(1, 2), 2, 3), 'other_epoch');
  assert.equal(staleReason(st(3, 1), 2, 3), 'other_id');
  assert.equal(staleReason(st(3, 2), 2, 3), undefined);
  // A SPIKE-style share without an id at the right epoch is left to the periodic push.
  assert.equal(staleReason(st(3, null), 2, 3), undefined);
});
