/** The per-target handshake gate (dial-gate.ts): limit, order, cancel, release, forgetting. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { awaitDialTurn, dialGateCount } from './dial-gate.js';

test('at most `limit` dials run per target; the rest start in order as earlier ones end', () => {
  const started: number[] = [];
  const turns = [0, 1, 2, 3, 4].map((i) => awaitDialTurn('a|1', () => started.push(i), 2));
  const other = awaitDialTurn('b|1', () => started.push(99), 2); // another target has its own slots
  assert.deepEqual(started, [0, 1, 99]);
  turns[1]!.done();
  assert.deepEqual(started, [0, 1, 99, 2]);
  turns[1]!.done(); // idempotent: frees nothing more
  assert.deepEqual(started, [0, 1, 99, 2]);
  turns[3]!.cancel(); // leaves the queue before its start
  turns[0]!.done();
  assert.deepEqual(started, [0, 1, 99, 2, 4]);
  turns[3]!.done(); // never started: no slot to free
  for (const t of [turns[2]!, turns[4]!, other]) {
    t.cancel(); // no effect once started
    t.done();
  }
  assert.equal(dialGateCount(), 0, 'idle targets are forgotten');
});

test('a cancelled waiter is never started, and cancelling the last waiter forgets the target', () => {
  let ran = 0;
  const first = awaitDialTurn('c|1', () => ran++, 1);
  const second = awaitDialTurn('c|1', () => ran++, 1);
  second.cancel();
  first.done();
  assert.equal(ran, 1);
  assert.equal(dialGateCount(), 0);
});

test('the gate remembers when a handshake to its target last succeeded, not when one failed', () => {
  const a = awaitDialTurn('d|1', () => undefined, 2);
  const b = awaitDialTurn('d|1', () => undefined, 2);
  const waiter = awaitDialTurn('d|1', () => undefined, 2);
  assert.equal(waiter.lastSuccessAt(), -Infinity);
  a.done(false);
  assert.equal(waiter.lastSuccessAt(), -Infinity, 'a failed handshake is no progress');
  const before = performance.now();
  b.done(true);
  assert.ok(waiter.lastSuccessAt() >= before && waiter.lastSuccessAt() <= performance.now());
  waiter.done();
  assert.equal(dialGateCount(), 0);
});

test('dials that fail at once (bad options) report through their callback and free their slots', async () => {
  const { dialMtls } = await import('./dial.js');
  const { createCa, makeSvid, bundleSetOf } = await import('../../../test/helpers/pki.js');
  const { StaticX509Source } = await import('../source.js');
  const { authorizeAny } = await import('../authorize.js');
  const { contextCache } = await import('./dial.js');
  const ca = await createCa('gate.test');
  const source = new StaticX509Source(await makeSvid(ca, 'spiffe://gate.test/client'), bundleSetOf(ca));
  const o = { source, authorizeServer: authorizeAny(), context: contextCache(source), timeoutMs: 10_000, timeoutError: () => new Error('timeout') };
  const results = await Promise.all(Array.from({ length: 12 }, () => new Promise<Error | null>((resolve) => {
    dialMtls({ hostname: '127.0.0.1', port: 9, localAddress: 'not-an-address' }, o, (err) => resolve(err));
  })));
  assert.equal(results.filter((e) => e instanceof Error).length, 12, 'every dial reported its failure');
  assert.equal(dialGateCount(), 0, 'no slot kept');
});
