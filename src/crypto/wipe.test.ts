import assert from 'node:assert/strict';
import { test } from 'node:test';
import { markAsUntransferable } from 'node:worker_threads';
import fc from 'fast-check';
import { FREE_MIN_BYTES, wasFreed, wipe, wipeAndFree } from './wipe.js';

const filled = (n: number): Buffer => Buffer.allocUnsafeSlow(n).fill(0xa5);

test('wipeAndFree: a buffer spanning its whole ArrayBuffer is freed at once (detached, memory given back)', () => {
  const size = 8 * 1024 * 1024;
  const b = filled(size);
  const view = new Uint8Array(b.buffer); // another view of the same memory sees it go too
  const before = process.memoryUsage().arrayBuffers;
  assert.equal(wipeAndFree(b), true);
  assert.equal(b.byteLength, 0);
  assert.equal(view.byteLength, 0);
  assert.equal(b.buffer.byteLength, 0);
  // Freed now, not at V8's next collection.
  assert.ok(before - process.memoryUsage().arrayBuffers >= size, 'ArrayBuffer memory fell by the buffer');
});

test('wipeAndFree: part of an ArrayBuffer, a small buffer, a pooled slice, a shared or untransferable buffer: zeroed, never freed', () => {
  const whole = filled(3 * FREE_MIN_BYTES);
  const part = whole.subarray(FREE_MIN_BYTES);
  assert.equal(wipeAndFree(part), false);
  assert.ok(part.every((x) => x === 0));
  assert.ok(whole.subarray(0, FREE_MIN_BYTES).every((x) => x === 0xa5), 'the rest of the ArrayBuffer untouched');
  assert.equal(whole.byteLength, 3 * FREE_MIN_BYTES);

  const small = filled(FREE_MIN_BYTES - 1);
  assert.equal(wipeAndFree(small), false);
  assert.equal(small.byteLength, FREE_MIN_BYTES - 1);
  assert.ok(small.every((x) => x === 0));

  const pooled = Buffer.from('pooled bytes');
  const neighbour = Buffer.from('neighbour in the same pool');
  assert.equal(pooled.buffer, neighbour.buffer, 'both from Node\'s pool');
  assert.equal(wipeAndFree(pooled), false);
  assert.equal(neighbour.toString(), 'neighbour in the same pool');

  const shared = new Uint8Array(new SharedArrayBuffer(2 * FREE_MIN_BYTES)).fill(7);
  assert.equal(wipeAndFree(shared), false);
  assert.ok(shared.every((x) => x === 0));

  const pinned = filled(2 * FREE_MIN_BYTES);
  markAsUntransferable(pinned.buffer);
  assert.equal(wipeAndFree(pinned), false);
  assert.equal(pinned.byteLength, 2 * FREE_MIN_BYTES);
  assert.ok(pinned.every((x) => x === 0));
});

test('wipeAndFree and wipe: a freed buffer can be wiped or freed again without an error; wasFreed tells it from an empty one', () => {
  const b = filled(2 * FREE_MIN_BYTES);
  const other = new Uint8Array(b.buffer);
  assert.equal(wasFreed(b), false);
  assert.equal(wipeAndFree(b), true);
  assert.equal(wasFreed(b), true);
  assert.equal(wasFreed(other), true, 'any view of the freed memory');
  assert.equal(wasFreed(Buffer.alloc(0)), false);
  assert.equal(wasFreed(new Uint8Array(0)), false);
  assert.equal(wipeAndFree(b), false);
  assert.doesNotThrow(() => wipe(b, undefined, null));
});

test('wipeAndFree (property): any view is zeroed; memory is freed only when the view spans its whole ArrayBuffer, and no other view of a larger buffer loses a byte', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 3 * FREE_MIN_BYTES }), fc.boolean(), fc.nat(), fc.nat(), (size, spanAll, a, c) => {
    const ab = new ArrayBuffer(size);
    const all = new Uint8Array(ab).fill(0x5a);
    const start = spanAll ? 0 : a % size;
    const end = spanAll ? size : start + 1 + (c % (size - start));
    const v = new Uint8Array(ab, start, end - start);
    const whole = start === 0 && end === size;
    const freed = wipeAndFree(v);
    assert.equal(freed, whole && size >= FREE_MIN_BYTES);
    if (freed) {
      assert.equal(all.byteLength, 0);
      return;
    }
    assert.equal(all.byteLength, size);
    for (let i = 0; i < size; i++) assert.equal(all[i], i >= start && i < end ? 0 : 0x5a);
  }), { numRuns: 300 });
});
