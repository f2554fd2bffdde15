import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from './log.js';
import { TRIM_POLICY, TrimPolicy, loadMallocTrim, loadMallocTrimFrom, mallocTrimAddonPath, startMallocTrimmer, type TrimSample } from './malloc-trim.js';
import { packageRoot } from './package-root.js';

const MiB = 1024 * 1024;
const quiet = createLogger({ component: 'malloc-trim-test', level: 'silent' });
const calm = (rss: number, now: number): TrimSample => ({ rss, cpuMicros: 0, windowMs: 1000, now });

test('TrimPolicy: while calm, trims every 5 s while trims give memory back, backing off to once a minute', () => {
  const p = new TrimPolicy();
  assert.equal(p.shouldTrim(calm(60 * MiB, 0)), true, 'nothing trimmed yet');
  p.trimmed(60 * MiB, 55 * MiB, 0);
  assert.equal(p.shouldTrim(calm(55 * MiB, 4000)), false, '4 s after a trim that gave 5 MiB back');
  assert.equal(p.shouldTrim(calm(55 * MiB, 5000)), true, '5 s after it');
  // Trims that give nothing back: 5 → 10 → 20 → 40 → 60 → 60 s.
  let at = 5000;
  for (const gap of [10_000, 20_000, 40_000, 60_000, 60_000]) {
    p.trimmed(55 * MiB, 55 * MiB, at);
    assert.equal(p.gapMs, gap);
    assert.equal(p.shouldTrim(calm(55 * MiB, at + gap - 1000)), false);
    assert.equal(p.shouldTrim(calm(55 * MiB, at + gap)), true);
    at += gap;
  }
  // A few MiB of RSS noise (V8's heap) do not undo the back-off.
  p.trimmed(55 * MiB, 55 * MiB, at);
  assert.equal(p.shouldTrim(calm(58 * MiB, at + 5000)), false, '3 MiB above: still once a minute');
  // A burst: RSS 8 MiB above what the last trim left, back to every 5 s.
  assert.equal(p.shouldTrim(calm(63 * MiB, at + 5000)), true);
  p.trimmed(63 * MiB, 60 * MiB, at + 5000);
  assert.equal(p.gapMs, 5000, 'that trim gave 3 MiB back');
});

test('TrimPolicy: a burst that leaves RSS up is trimmed 5 s after the previous trim, once calm', () => {
  const p = new TrimPolicy();
  p.trimmed(60 * MiB, 60 * MiB, 0);
  p.trimmed(60 * MiB, 60 * MiB, 10_000); // backed off to 20 s
  assert.equal(p.gapMs, 20_000);
  assert.equal(p.shouldTrim({ rss: 95 * MiB, cpuMicros: 900_000, windowMs: 1000, now: 12_000 }), false, 'busy');
  assert.equal(p.shouldTrim(calm(95 * MiB, 15_000)), true, 'grown by 35 MiB: the gap is 5 s again');
});

test('TrimPolicy: a busy process is never trimmed (its free memory is about to be used again)', () => {
  const p = new TrimPolicy();
  const share = TRIM_POLICY.calmCpuShare;
  assert.equal(p.shouldTrim({ rss: 90 * MiB, cpuMicros: share * 1_000_000 + 1, windowMs: 1000, now: 10_000 }), false);
  assert.equal(p.shouldTrim({ rss: 90 * MiB, cpuMicros: share * 1_000_000, windowMs: 1000, now: 11_000 }), true);
});

/** Lets a settled trim's continuation run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

test('TrimPolicy: a window that is not a positive number of ms never counts as calm', () => {
  const p = new TrimPolicy();
  p.shouldTrim(calm(50 * MiB, 0));
  for (const windowMs of [0, -5, Number.NaN]) assert.equal(p.shouldTrim({ rss: 90 * MiB, cpuMicros: 0, windowMs, now: 60_000 }), false, String(windowMs));
  assert.equal(p.shouldTrim({ rss: 90 * MiB, cpuMicros: Number.NaN, windowMs: 1000, now: 60_000 }), false, 'CPU time NaN');
  assert.equal(p.shouldTrim(calm(90 * MiB, 60_000)), true);
});

test('startMallocTrimmer: trims at start, not while busy, then again once calm; stop() ends it', async () => {
  let rss = 60 * MiB;
  let cpu = 0;
  let now = 0;
  let tick: (() => void) | undefined;
  let stopped = false;
  const t = startMallocTrimmer(quiet, {
    trim: () => {
      rss -= 5 * MiB;
      return Promise.resolve(true);
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
  await settle();
  assert.equal(t.trims, 1, 'one trim at start');
  assert.equal(t.releasedBytes, 5 * MiB);
  const second = async (cpuUsed: number): Promise<void> => {
    now += 1000;
    cpu += cpuUsed;
    tick!();
    await settle();
  };
  rss = 90 * MiB;
  for (let i = 0; i < 10; i++) await second(900_000);
  assert.equal(t.trims, 1, 'no trim while busy (90% of a core)');
  await second(10_000);
  assert.equal(t.trims, 2, 'calm, 30 MiB above the floor, 10 s after the last trim');
  assert.equal(t.releasedBytes, 10 * MiB);
  await second(0);
  assert.equal(t.trims, 2, '1 s after the last trim: too soon');
  assert.equal(t.active, true);
  t.stop();
  assert.ok(stopped);
  assert.equal(t.active, false);
});

test('startMallocTrimmer: one trim at a time, however long it takes', async () => {
  let release: ((v: boolean) => void) | undefined;
  let calls = 0;
  let rss = 50 * MiB;
  let now = 0;
  let tick: (() => void) | undefined;
  const t = startMallocTrimmer(quiet, {
    trim: () => {
      calls++;
      return new Promise<boolean>((r) => (release = r));
    },
    rss: () => rss, cpuMicros: () => 0, now: () => now,
    every: (fn) => ((tick = fn), () => undefined),
  });
  assert.ok(t && tick);
  rss = 200 * MiB;
  for (let i = 0; i < 20; i++) {
    now += 1000;
    tick();
  }
  assert.equal(calls, 1, 'the trim at start has not finished: no second one');
  release!(true);
  await settle();
  rss = 220 * MiB; // 20 MiB above the floor that trim left (200 MiB)
  now += 10_000;
  tick();
  assert.equal(calls, 2);
  t.stop();
});

test('startMallocTrimmer: an error while sampling or trimming stops the trimmer, never the process', async () => {
  let tick: (() => void) | undefined;
  let failRss = false;
  const t = startMallocTrimmer(quiet, {
    trim: () => Promise.resolve(true),
    rss: () => {
      if (failRss) throw Object.assign(new Error('no /proc'), { code: 'ENOENT' });
      return 50 * MiB;
    },
    cpuMicros: () => 0, now: () => 0,
    every: (fn) => ((tick = fn), () => undefined),
  });
  assert.ok(t && tick);
  failRss = true;
  tick();
  assert.equal(t.active, false);
  const rejected = startMallocTrimmer(quiet, { trim: () => Promise.reject(new Error('did not run')), rss: () => 1, cpuMicros: () => 0, now: () => 0, every: () => () => undefined });
  assert.ok(rejected);
  await settle();
  assert.equal(rejected.active, false);
  assert.equal(startMallocTrimmer(quiet, { trim: () => { throw new Error('x'); }, rss: () => 1, cpuMicros: () => 0, now: () => 0 }), undefined);
});

test('startMallocTrimmer: no trimmer where there is no trim (not built) or the C library is not glibc', () => {
  assert.equal(startMallocTrimmer(quiet, { trim: () => undefined }), undefined);
});

/** glibc's run-time version, when the C library is glibc. */
const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;

test('the addon is built here and gives a fragmented heap back: RSS falls by at least 8 MiB', { skip: (process.platform !== 'linux' || glibc === undefined) && 'not Linux with glibc' }, () => {
  const root = packageRoot();
  assert.ok(root, 'the package root is found');
  assert.equal(typeof loadMallocTrim(), 'function', `native/malloc-trim is not loaded (${String(loadMallocTrim())}; npm's install script, native/build.mjs): ${mallocTrimAddonPath(root.dir)}`);
  // A child fills the heap with small OpenSSL allocations (hash contexts), frees all but every
  // 64th (so no free memory sits at the heap's top, which free() alone would return), then trims.
  const script = `
    const { trim } = require(${JSON.stringify(mallocTrimAddonPath(root.dir))});
    const crypto = require('node:crypto');
    const rss = () => process.memoryUsage.rss();
    let all = []; const keep = [];
    for (let i = 0; i < 60000; i++) { const h = crypto.createHash('sha512'); h.update('x'); all.push(h); if (i % 64 === 0) keep.push(h); }
    all = null; globalThis.gc(); globalThis.gc();
    const before = rss();
    trim().then((released) => process.stdout.write(JSON.stringify({ before, after: rss(), released, kept: keep.length })));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', env: { ...process.env, MALLOC_ARENA_MAX: '2' } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { before: number; after: number; released: boolean };
  assert.equal(out.released, true);
  assert.ok(out.before - out.after >= 8 * MiB, `RSS ${(out.before / MiB).toFixed(1)} -> ${(out.after / MiB).toFixed(1)} MiB`);
});

test('ATTACK addon swap: the addon is loaded only when it and every folder up to the package root are the package owner\'s alone, and not a symlink', { skip: (process.platform !== 'linux' || glibc === undefined) && 'not Linux with glibc' }, () => {
  const root = packageRoot();
  assert.ok(root);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'malloc-trim-trust-'));
  try {
    fs.chmodSync(dir, 0o755);
    fs.writeFileSync(path.join(dir, 'package.json'), '{}');
    const file = mallocTrimAddonPath(dir);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    fs.copyFileSync(mallocTrimAddonPath(root.dir), file);
    fs.chmodSync(file, 0o755);
    assert.equal(typeof loadMallocTrimFrom(dir), 'function');
    for (const writable of [file, path.dirname(file), path.join(dir, 'native')]) {
      fs.chmodSync(writable, 0o775);
      assert.equal(loadMallocTrimFrom(dir), 'untrusted', `${path.relative(dir, writable)} group-writable`);
      fs.chmodSync(writable, 0o755);
    }
    const real = `${file}.real`;
    fs.renameSync(file, real);
    fs.symlinkSync(real, file);
    assert.equal(loadMallocTrimFrom(dir), 'untrusted', 'a symlink');
    fs.rmSync(file);
    assert.equal(loadMallocTrimFrom(dir), 'not_built');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
