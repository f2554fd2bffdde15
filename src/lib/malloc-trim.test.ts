import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createLogger } from './log.js';
import { TRIM_POLICY, TrimPolicy, loadMallocTrim, mallocTrimAddonPath, startMallocTrimmer, type TrimSample } from './malloc-trim.js';
import { packageRoot } from './package-root.js';

const MiB = 1024 * 1024;
const quiet = createLogger({ component: 'malloc-trim-test', level: 'silent' });
const calm = (rss: number, now: number): TrimSample => ({ rss, cpuMicros: 0, windowMs: 1000, now });

test('TrimPolicy: trims once RSS stands 8 MiB above its lowest, while calm, at most every 5 s', () => {
  const p = new TrimPolicy();
  assert.equal(p.shouldTrim(calm(60 * MiB, 0)), false, 'the first sample sets the floor');
  assert.equal(p.shouldTrim(calm(67 * MiB, 1000)), false, '7 MiB of growth is not worth a trim');
  assert.equal(p.shouldTrim(calm(68 * MiB, 2000)), true);
  p.trimmed(61 * MiB, 2000);
  assert.equal(p.shouldTrim(calm(70 * MiB, 4000)), false, '2 s after a trim: too soon');
  assert.equal(p.shouldTrim(calm(70 * MiB, 7000)), true, 'the trim set the floor to 61 MiB, 5 s have passed');
});

test('TrimPolicy: a busy process is never trimmed (its free memory is about to be used again)', () => {
  const p = new TrimPolicy();
  p.shouldTrim(calm(50 * MiB, 0));
  const share = TRIM_POLICY.calmCpuShare;
  assert.equal(p.shouldTrim({ rss: 90 * MiB, cpuMicros: share * 1_000_000 + 1, windowMs: 1000, now: 10_000 }), false);
  assert.equal(p.shouldTrim({ rss: 90 * MiB, cpuMicros: share * 1_000_000, windowMs: 1000, now: 11_000 }), true);
});

test('TrimPolicy: the floor is the lowest RSS seen, so a fall and a new rise count from the bottom', () => {
  const p = new TrimPolicy();
  p.shouldTrim(calm(80 * MiB, 0));
  p.shouldTrim(calm(50 * MiB, 1000));
  assert.equal(p.shouldTrim(calm(60 * MiB, 2000)), true);
});

test('startMallocTrimmer: trims at start, then again once the process grew and is calm; stop() ends it', () => {
  let rss = 60 * MiB;
  let cpu = 0;
  let now = 0;
  let tick: (() => void) | undefined;
  let stopped = false;
  const t = startMallocTrimmer(quiet, {
    trim: () => {
      rss -= 5 * MiB;
      return true;
    },
    rss: () => rss,
    cpuMicros: () => cpu,
    now: () => now,
    every: (fn, ms) => {
      assert.equal(ms, TRIM_POLICY.intervalMs);
      tick = fn;
      return () => {
        stopped = true;
      };
    },
  });
  assert.ok(t && tick);
  assert.equal(t.trims, 1, 'one trim at start');
  assert.equal(t.releasedBytes, 5 * MiB);
  const second = (cpuUsed: number): void => {
    now += 1000;
    cpu += cpuUsed;
    tick!();
  };
  rss = 90 * MiB;
  for (let i = 0; i < 10; i++) second(900_000);
  assert.equal(t.trims, 1, 'no trim while busy (90% of a core)');
  second(10_000);
  assert.equal(t.trims, 2, 'calm, 30 MiB above the floor, 10 s after the last trim');
  assert.equal(t.releasedBytes, 10 * MiB);
  second(0);
  assert.equal(t.trims, 2, 'back at the floor');
  t.stop();
  assert.ok(stopped);
});

test('startMallocTrimmer: no trimmer where there is no trim (not built) or the C library is not glibc', () => {
  assert.equal(startMallocTrimmer(quiet, { trim: () => undefined }), undefined);
});

/** glibc's run-time version, when the C library is glibc. */
const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;

test('the addon is built here and gives a fragmented heap back: RSS falls by at least 8 MiB', { skip: (process.platform !== 'linux' || glibc === undefined) && 'not Linux with glibc' }, () => {
  const root = packageRoot();
  assert.ok(root, 'the package root is found');
  assert.equal(typeof loadMallocTrim(), 'function', `native/malloc-trim is not built (npm's install script, native/build.mjs): ${mallocTrimAddonPath(root.dir)}`);
  // A child fills the heap with small OpenSSL allocations (hash contexts), frees all but every
  // 64th (so no free memory sits at the heap's top, which free() alone would return), then trims.
  const script = `
    const { trim } = require(${JSON.stringify(mallocTrimAddonPath(root.dir))});
    const crypto = require('node:crypto');
    const rss = () => process.memoryUsage.rss();
    let all = []; const keep = [];
    for (let i = 0; i < 60000; i++) { const h = crypto.createHash('sha512'); h.update('x'); all.push(h); if (i % 64 === 0) keep.push(h); }
    all = null; globalThis.gc(); globalThis.gc();
    const before = rss(); const released = trim(); const after = rss();
    process.stdout.write(JSON.stringify({ before, after, released, kept: keep.length }));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', env: { ...process.env, MALLOC_ARENA_MAX: '2' } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { before: number; after: number; released: boolean };
  assert.equal(out.released, true);
  assert.ok(out.before - out.after >= 8 * MiB, `RSS ${(out.before / MiB).toFixed(1)} -> ${(out.after / MiB).toFixed(1)} MiB`);
});
