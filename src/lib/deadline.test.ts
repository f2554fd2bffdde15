/**
 * The request deadline: visible to everything the request awaits (timers included), absent
 * outside requests and in work started through `outsideRequest` (which outlives the request).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { outsideRequest, remainingMs, runWithDeadline } from './deadline.js';

test('a deadline is seen through awaits and timers, not outside the request, not through outsideRequest', async () => {
  assert.equal(remainingMs(), undefined);
  await runWithDeadline(1000, async () => {
    await new Promise((r) => setTimeout(r, 5));
    const left = remainingMs();
    assert.ok(left !== undefined && left <= 1000 && left > 0);
    const inTimer = await new Promise<number | undefined>((r) => setTimeout(() => r(remainingMs()), 1));
    assert.ok(inTimer !== undefined);
    const escaped = await new Promise<number | undefined>((r) => outsideRequest(() => setTimeout(() => r(remainingMs()), 1)));
    assert.equal(escaped, undefined);
  });
  assert.equal(runWithDeadline(0, () => remainingMs()), undefined, '0 = no deadline');
});
