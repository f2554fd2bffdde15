/**
 * The SDK's instance order: the last instance that answered first, failing instances cooled
 * down (doubling, capped) and tried last, never dropped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COOL_DOWN, InstanceOrder } from './instances.js';

test('a failing instance is tried last while it cools down, and first again only after it answers', () => {
  let now = 0;
  const o = new InstanceOrder(3, () => now);
  assert.deepEqual(o.order(), [0, 1, 2]);
  o.failed(0);
  assert.deepEqual(o.order(), [1, 2, 0], 'not preferred, tried last');
  o.succeeded(2);
  assert.deepEqual(o.order(), [2, 1, 0]);
  now += COOL_DOWN.firstMs;
  assert.deepEqual(o.order(), [2, 0, 1], 'cooled down: back in the rotation, but not preferred');
  o.succeeded(0);
  assert.deepEqual(o.order(), [0, 1, 2]);
});

test('the cool-down doubles with consecutive failures up to its cap; all cooling → all still tried', () => {
  let now = 0;
  const o = new InstanceOrder(2, () => now);
  for (let n = 0; n < 10; n++) o.failed(1);
  now += COOL_DOWN.maxMs - 1;
  assert.ok(o.coolingDown(1));
  now += 1;
  assert.ok(!o.coolingDown(1), 'capped');
  o.failed(0);
  o.failed(1);
  assert.equal(o.order().length, 2, 'every instance is still tried when all are cooling down');
});
