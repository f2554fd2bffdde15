/**
 * regexp-compile.ts: the regexp optimizer is off only while the call runs (a V8 code cache made
 * before is refused inside the call, because the flag hash differs, and accepted again after
 * it), also when the call throws; a process started with a regexp option is left alone; the
 * call's result and matching are unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { regexpFlagsChosen, withoutRegexpOptimization } from './regexp-compile.js';

const SOURCE = 'function probe() { return 40 + 2; } probe();';
// A new script name for every compile: V8's in-memory compilation cache would otherwise answer
// without looking at the cache data.
let scripts = 0;
const name = (): string => `regexp-compile-probe-${scripts++}.js`;

/** A code cache made under the flags in effect now. */
function cacheNow(): Buffer {
  const s = new vm.Script(SOURCE, { filename: name() });
  s.runInThisContext();
  return s.createCachedData();
}

/** Whether V8 accepts `cache` under the flags in effect now (it refuses a cache made under other flags). */
function accepted(cache: Buffer): boolean {
  return !new vm.Script(SOURCE, { filename: name(), cachedData: cache }).cachedDataRejected;
}

test('the optimizer is off during the call only: the flag hash is the same after it', () => {
  const before = cacheNow();
  const inside = withoutRegexpOptimization(() => accepted(before), [], undefined);
  assert.equal(inside, false, 'the flag was not changed during the call');
  assert.equal(accepted(before), true, 'the flags were not restored after the call');
});

test('the flag is restored when the call throws', () => {
  const before = cacheNow();
  assert.throws(() => withoutRegexpOptimization(() => { throw new Error('boom'); }, [], undefined), /boom/);
  assert.equal(accepted(before), true);
});

test('the call returns its result and patterns match as before', () => {
  const ipv6 = /^(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$/i;
  const out = withoutRegexpOptimization(() => [ipv6.test('2001:db8:0:0:0:0:0:1'), ipv6.test('localhost')], [], undefined);
  assert.deepEqual(out, [true, false]);
});

test('a process started with a regexp option is left alone', () => {
  assert.equal(regexpFlagsChosen(['--no-regexp-optimization'], undefined), true);
  assert.equal(regexpFlagsChosen(['--freeze-flags-after-init'], undefined), true, 'frozen flags: V8 would abort on a change');
  assert.equal(regexpFlagsChosen([], '--max-old-space-size=64 --regexp-tier-up-ticks=5'), true);
  assert.equal(regexpFlagsChosen(['--enable-source-maps'], '--max-old-space-size=64'), false);
  const before = cacheNow();
  const inside = withoutRegexpOptimization(() => accepted(before), ['--regexp-optimization'], undefined);
  assert.equal(inside, true, 'a chosen regexp flag was overridden');
});
