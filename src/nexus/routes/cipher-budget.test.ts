/**
 * The cipher memory budget (cipher-budget.ts): reserve/release accounting, refusals (503 when
 * it could fit later, 400 when it never can), the per-caller share, idempotent release, and `releasingIterable`
 * giving the bytes back on every way an iteration can end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, ERR } from '../../protocol/errors.js';
import { ByteBudget, CIPHER_BUSY_MESSAGE, CIPHER_BUSY_REASON, callerShare, cipherBusy, releasingIterable } from './cipher-budget.js';

function assertBusy(e: unknown): true {
  assert.ok(e instanceof ApiError);
  assert.equal(e.status, 503);
  assert.equal(e.code, ERR.notReady);
  assert.equal(e.message, CIPHER_BUSY_MESSAGE);
  assert.equal(e.reason, CIPHER_BUSY_REASON);
  assert.equal(e.expose, true);
  assert.equal(e.closeConnection, true);
  return true;
}

function assertTooLarge(e: unknown): true {
  assert.ok(e instanceof ApiError);
  assert.equal(e.status, 400);
  assert.equal(e.code, ERR.badRequest);
  assert.equal(e.reason, 'payload_too_large');
  return true;
}

test('budget: reserve and release move the count; the limit itself fits', () => {
  const b = new ByteBudget(100);
  const r1 = b.reserve(60);
  assert.equal(b.used, 60);
  assert.equal(b.available, 40);
  assert.equal(r1.bytes, 60);
  const r2 = b.reserve(40);
  assert.equal(b.available, 0);
  r1.release();
  assert.equal(b.used, 40);
  assert.equal(r1.bytes, 0);
  assert.equal(r1.released, true);
  r2.release();
  assert.equal(b.used, 0);
  assert.equal(b.reserve(100).bytes, 100);
});

test('budget: over the free bytes → 503 busy and nothing reserved; over the whole budget → 400', () => {
  const b = new ByteBudget(100);
  const r = b.reserve(70);
  assert.equal(b.tryReserve(31), undefined);
  assert.throws(() => b.reserve(31), assertBusy);
  assert.equal(b.used, 70);
  assert.throws(() => b.reserve(101), assertTooLarge);
  assert.equal(b.used, 70);
  r.release();
  assert.equal(b.reserve(31).bytes, 31);
  assertBusy(cipherBusy());
});

test('budget: release is idempotent (a double release never frees someone else\'s bytes)', () => {
  const b = new ByteBudget(100);
  const a = b.reserve(50);
  const c = b.reserve(50);
  a.release();
  a.release();
  a.release();
  assert.equal(b.used, 50);
  assert.equal(b.tryReserve(51), undefined);
  c.release();
  assert.equal(b.used, 0);
});

test('budget: grow adds incrementally, refuses without changing anything, and never after release', () => {
  const b = new ByteBudget(100);
  const other = b.reserve(30);
  const r = b.reserve(10);
  assert.equal(r.tryGrow(20), true);
  assert.equal(r.bytes, 30);
  assert.equal(b.used, 60);
  assert.equal(r.tryGrow(41), false);
  assert.equal(r.bytes, 30);
  assert.equal(b.used, 60);
  assert.throws(() => r.grow(41), assertBusy); // 30 + 41 ≤ 100: could fit once `other` is gone
  assert.throws(() => r.grow(71), assertTooLarge); // 30 + 71 > 100: never fits
  assert.equal(b.used, 60);
  r.grow(40);
  assert.equal(b.available, 0);
  r.release();
  assert.equal(b.used, 30);
  assert.equal(r.tryGrow(1), false);
  assert.throws(() => r.grow(1), /grow after release/);
  assert.equal(b.used, 30);
  other.release();
  assert.equal(b.used, 0);
});

test('budget: bad sizes are programming errors', () => {
  assert.throws(() => new ByteBudget(-1), RangeError);
  assert.throws(() => new ByteBudget(1.5), RangeError);
  const b = new ByteBudget(10);
  assert.throws(() => b.reserve(-1), RangeError);
  assert.throws(() => b.reserve(Number.NaN), RangeError);
  assert.throws(() => b.reserve(0.5), RangeError);
  assert.throws(() => b.reserve(1).tryGrow(-2), RangeError);
  assert.equal(b.reserve(0).bytes, 0);
});

test('budget: one caller is held to its share (503 like over budget) while another caller still gets in', () => {
  const b = new ByteBudget(100, { perCaller: 40 });
  const a1 = b.reserve(30, 'spiffe://x/a');
  assert.equal(b.tryReserve(11, 'spiffe://x/a'), undefined); // 41 > share, though 70 bytes are free
  assert.throws(() => b.reserve(11, 'spiffe://x/a'), assertBusy);
  assert.equal(a1.tryGrow(11), false);
  assert.throws(() => a1.grow(11), assertBusy); // over the share, not over the budget: 503, not 400
  assert.equal(a1.bytes, 30);
  const a2 = b.reserve(10, 'spiffe://x/a'); // exactly the share
  assert.equal(b.usedBy('spiffe://x/a'), 40);
  const other = b.reserve(40, 'spiffe://x/b'); // another caller has its own share
  assert.equal(other.bytes, 40);
  assert.equal(b.used, 80);
  a1.release();
  assert.equal(b.usedBy('spiffe://x/a'), 10);
  assert.equal(a2.tryGrow(30), true); // back to the share after the release
  assert.equal(b.usedBy('spiffe://x/a'), 40);
  a2.release();
  other.release();
  assert.equal(b.used, 0);
  assert.equal(b.usedBy('spiffe://x/a'), 0);
  assert.equal(b.usedBy('spiffe://x/b'), 0);
  // A share above the budget is the budget; no share means the whole budget.
  assert.equal(new ByteBudget(100, { perCaller: 500 }).perCaller, 100);
  assert.equal(new ByteBudget(100).perCaller, 100);
  assert.throws(() => new ByteBudget(100, { perCaller: -1 }), RangeError);
});

test('callerShare: a quarter of the budget, at least the largest request, at most the budget', () => {
  const MiB = 1024 * 1024;
  const largest = 64 * MiB + 29 + 64 * 1024; // a full-size stream decrypt with its working chunk
  // Defaults (256 MiB): one full-size decrypt per caller, so a single big request still works.
  assert.equal(callerShare(256 * MiB, largest), largest);
  assert.equal(callerShare(1024 * MiB, largest), 256 * MiB);
  assert.equal(callerShare(56 * MiB, largest), 56 * MiB);
  assert.equal(callerShare(400, 10), 100);
});

/** A source that counts what happened to it. */
function counted(items: number[], failAt?: number): { it: AsyncGenerator<number>; state: { finallyRan: boolean } } {
  const state = { finallyRan: false };
  async function* gen(): AsyncGenerator<number> {
    try {
      for (const [i, x] of items.entries()) {
        if (i === failAt) throw new Error('source failed');
        yield x;
      }
    } finally {
      state.finallyRan = true;
    }
  }
  return { it: gen(), state };
}

test('releasingIterable: released once when the iteration is exhausted', async () => {
  let released = 0;
  const { it } = counted([1, 2, 3]);
  const seen: number[] = [];
  for await (const x of releasingIterable(it, () => released++)) {
    assert.equal(released, 0);
    seen.push(x);
  }
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(released, 1);
});

test('releasingIterable: released once when the source throws', async () => {
  let released = 0;
  const { it } = counted([1, 2, 3], 1);
  await assert.rejects(async () => {
    for await (const x of releasingIterable(it, () => released++)) void x;
  }, /source failed/);
  assert.equal(released, 1);
});

test('releasingIterable: released once when the consumer stops (break / throw / client gone)', async () => {
  let released = 0;
  const a = counted([1, 2, 3]);
  for await (const x of releasingIterable(a.it, () => released++)) if (x === 1) break;
  assert.equal(released, 1);
  assert.equal(a.state.finallyRan, true);
  const b = counted([1, 2, 3]);
  await assert.rejects(async () => {
    for await (const x of releasingIterable(b.it, () => released++)) if (x === 2) throw new Error('client went away');
  }, /client went away/);
  assert.equal(released, 2);
  assert.equal(b.state.finallyRan, true);
});

test('releasingIterable: released even when stopped before the first next() (a generator\'s finally would not run)', async () => {
  let released = 0;
  const c = counted([1, 2, 3]);
  const iterable = releasingIterable(c.it, () => released++);
  const iter = iterable[Symbol.asyncIterator]();
  await iter.return?.();
  await iter.return?.();
  assert.equal(released, 1);
  assert.equal(c.state.finallyRan, false); // the source never started: only our release ran
  assert.deepEqual(await iter.next(), { done: true, value: undefined });
});
