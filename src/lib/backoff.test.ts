import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Backoff, backoffDelay } from './backoff.js';

test('backoff without jitter doubles from initial and stops at max', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1_000 });
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1_000, 1_000]);
  b.reset();
  assert.equal(b.next(), 100);
});

test('equal jitter stays within [d/2, d] and a huge attempt count does not overflow', () => {
  for (const attempt of [0, 1, 5, 30, 1e9]) {
    const d = Math.min(5_000, 100 * 2 ** Math.min(attempt, 30));
    for (let i = 0; i < 50; i++) {
      const v = backoffDelay(attempt, { initialMs: 100, maxMs: 5_000, jitter: 'equal' });
      assert.ok(v >= Math.floor(d / 2) && v <= d, `attempt ${attempt}: ${v}`);
    }
  }
});

// The Workload API source's reconnect backoff (equal jitter), as its own test had it.
test('backoff stays within [d/2, d] and never exceeds the cap', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 100 }), (n) => {
    const d = Math.min(5_000, 100 * 2 ** Math.min(n, 30));
    const v = backoffDelay(n, { initialMs: 100, maxMs: 5_000, jitter: 'equal' });
    return v >= Math.floor(d / 2) && v <= d;
  }));
});
