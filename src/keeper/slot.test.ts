import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShareSlot, KeeperSlotError } from './slot.js';

const v = (b: number): Uint8Array => new Uint8Array(32).fill(b);

test('KPR-08: once Nexus confirmed a share, Bootstrap cannot replace it at the same or a higher epoch', () => {
  const slot = new ShareSlot();
  assert.equal(slot.contribute('bootstrap', { value: v(1), epoch: 1 }), 'stored');
  assert.equal(slot.contribute('bootstrap', { value: v(2), epoch: 1 }), 'stored', 'unconfirmed: a rerun may replace');
  assert.equal(slot.contribute('nexus', { value: v(2), epoch: 1 }), 'unchanged');
  assert.equal(slot.contribute('bootstrap', { value: v(2), epoch: 1 }), 'unchanged', 'identical re-send acknowledged');
  for (const epoch of [1, 2, 99]) {
    assert.throws(() => slot.contribute('bootstrap', { value: v(3), epoch }), (e: unknown) => e instanceof KeeperSlotError && e.status === 409);
  }
  assert.throws(() => slot.contribute('nexus', { value: v(4), epoch: 0 }), KeeperSlotError);
  assert.equal(Buffer.from(slot.get()!.value).toString('hex'), Buffer.from(v(2)).toString('hex'));
  assert.equal(slot.contribute('nexus', { value: v(5), epoch: 2 }), 'stored', 'Nexus may move the epoch');
});
