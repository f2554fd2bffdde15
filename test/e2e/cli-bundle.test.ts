/**
 * bin/spike.js and the CLI bundle (issue 15, start-up time), on a copy of bin/ and dist/cli/
 * in a temp folder (dist/src and node_modules linked): the first call writes a V8 code cache
 * named by the bundle's hash and later calls use it unchanged; a corrupt cache is refused by
 * V8, the call still works and writes a good one; a cache others can write is ignored; a stamp that does not match the compiled
 * code (a later `tsc`) or has no hash makes the CLI run from dist/src, while an installed
 * package (no tsconfig.json) runs its bundle whatever its files' mtimes, if the bundle's sha256
 * is the stamp's; a cache named after
 * another bundle is left alone. The bundler's build-time cache (`.build.cache`) is written next
 * to the bundle; a call with only that cache works, writes its own and leaves it unchanged; a
 * corrupt, foreign-writable or FIFO build cache changes nothing but speed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../helpers/bin.js';

let root = '';
let cliDir = '';
let hash = '';
/** The stamp's first half for the compiled code that is there now (bin/load-bundle.js `compiledMark`). */
let mark = '';
const bundleSrc = path.join(REPO_ROOT, 'dist', 'cli', 'spike.cjs');

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-bundle-'));
  fs.mkdirSync(path.join(root, 'bin'));
  for (const f of ['spike.js', 'load-bundle.js', 'package.json']) fs.copyFileSync(path.join(REPO_ROOT, 'bin', f), path.join(root, 'bin', f));
  fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(root, 'package.json'));
  // a checkout that compiles its own code (an installed package has no tsconfig.json)
  fs.copyFileSync(path.join(REPO_ROOT, 'tsconfig.json'), path.join(root, 'tsconfig.json'));
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  cliDir = path.join(root, 'dist', 'cli');
  fs.mkdirSync(cliDir, { recursive: true });
  fs.symlinkSync(path.join(REPO_ROOT, 'dist', 'src'), path.join(root, 'dist', 'src'));
  fs.copyFileSync(bundleSrc, path.join(cliDir, 'spike.cjs'));
  hash = crypto.createHash('sha256').update(fs.readFileSync(bundleSrc)).digest('hex');
  const loader = await import(pathToFileURL(path.join(root, 'bin', 'load-bundle.js')).href) as { compiledMark(name: string): string };
  mark = loader.compiledMark('spike');
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

const cacheFile = (): string => path.join(cliDir, `v8-${hash.slice(0, 32)}.cache`);
const buildCacheFile = (): string => path.join(cliDir, `v8-${hash.slice(0, 32)}.build.cache`);
const caches = (): string[] => fs.readdirSync(cliDir).filter((f) => (f.endsWith('.cache') && !f.endsWith('.build.cache')) || f.endsWith('.tmp'));

function version(): string {
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'spike.js'), '--version'], { encoding: 'utf8', timeout: 120_000, env: { PATH: process.env['PATH'] ?? '' } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test('first call writes the code cache named by the bundle hash; the next call uses it unchanged', { skip: !fs.existsSync(bundleSrc) && 'no bundle (esbuild missing)' }, () => {
  fs.writeFileSync(path.join(cliDir, 'spike.stamp'), `${mark} ${hash}`);
  assert.equal(version(), JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).version);
  assert.deepEqual(caches(), [path.basename(cacheFile())]);
  const first = fs.readFileSync(cacheFile());
  const firstMtime = fs.statSync(cacheFile()).mtimeMs;
  version();
  assert.equal(fs.statSync(cacheFile()).mtimeMs, firstMtime, 'an accepted cache is not rewritten');
  assert.ok(fs.readFileSync(cacheFile()).equals(first));
});

test('a corrupt cache is refused by V8: the call works and replaces it', { skip: !fs.existsSync(bundleSrc) && 'no bundle' }, () => {
  fs.writeFileSync(path.join(cliDir, 'spike.stamp'), `${mark} ${hash}`);
  const garbage = crypto.randomBytes(4096);
  fs.writeFileSync(cacheFile(), garbage);
  version();
  assert.ok(!fs.readFileSync(cacheFile()).equals(garbage), 'the refused cache was replaced');
  assert.deepEqual(caches(), [path.basename(cacheFile())], 'no temporary file left');
});

test('ATTACK cache FIFO: a FIFO planted at the cache path does not hang the CLI (opened non-blocking, never followed)', { skip: (process.platform === 'win32' || !fs.existsSync(bundleSrc)) && 'no bundle or no FIFOs' }, () => {
  fs.writeFileSync(path.join(cliDir, 'spike.stamp'), `${mark} ${hash}`);
  fs.rmSync(cacheFile(), { force: true });
  const mk = spawnSync('mkfifo', [cacheFile()]);
  if (mk.status !== 0) return; // no mkfifo on this machine
  try {
    version(); // spawnSync's timeout fails the test if the open blocks
  } finally {
    fs.rmSync(cacheFile(), { force: true });
  }
});

test('a cache others can write is ignored and replaced by one only its owner can write', { skip: (process.platform === 'win32' || !fs.existsSync(bundleSrc)) && 'no bundle or no modes' }, () => {
  fs.writeFileSync(path.join(cliDir, 'spike.stamp'), `${mark} ${hash}`);
  version();
  fs.chmodSync(cacheFile(), 0o666);
  const inode = fs.statSync(cacheFile()).ino;
  version();
  const st = fs.statSync(cacheFile());
  assert.notEqual(st.ino, inode, 'the writable cache was not used but replaced');
  assert.equal(st.mode & 0o022, 0);
});

test('a stamp that does not match the compiled code, or has no hash, runs the CLI from dist/src', { skip: !fs.existsSync(bundleSrc) && 'no bundle' }, () => {
  for (const c of caches()) fs.rmSync(path.join(cliDir, c));
  // The bundle is replaced by something that would fail: only dist/src can answer.
  fs.writeFileSync(path.join(cliDir, 'spike.cjs'), '(function () { throw new Error("stale bundle ran"); })');
  try {
    // A later whole `tsc -p .` (the first module rewritten), a later incremental `tsc -b .` (its
    // build information rewritten, the first module maybe not), no hash, a malformed hash.
    const [entryMs, infoMs] = mark.split('/');
    const stale = [`${Number(entryMs) + 1}/${infoMs} ${hash}`, `${entryMs}/${infoMs === '-' ? '1' : Number(infoMs) + 1} ${hash}`];
    for (const stamp of [...stale, `${mark}`, `${mark} not-a-hash`]) {
      fs.writeFileSync(path.join(cliDir, 'spike.stamp'), stamp);
      assert.ok(version().length > 0);
      assert.deepEqual(caches(), [], 'no cache for a bundle that was not used');
    }
    // An installed package (no tsconfig.json: never recompiled, every mtime the install's) runs
    // its bundle whatever the mark half says, if the bundle's sha256 is the stamp's.
    fs.renameSync(path.join(root, 'tsconfig.json'), path.join(root, 'tsconfig.json.off'));
    try {
      fs.writeFileSync(path.join(cliDir, 'spike.stamp'), `${Number(entryMs) + 1}/${infoMs} ${hash}`);
      assert.ok(version().length > 0, 'a bundle whose content is not the stamp\'s is not run');
      assert.deepEqual(caches(), []);
      fs.copyFileSync(bundleSrc, path.join(cliDir, 'spike.cjs'));
      assert.ok(version().length > 0);
      assert.deepEqual(caches(), [path.basename(cacheFile())], 'the matching bundle ran (it wrote its code cache)');
      for (const c of caches()) fs.rmSync(path.join(cliDir, c));
      for (const stamp of [`${mark}`, `${mark} not-a-hash`]) {
        fs.writeFileSync(path.join(cliDir, 'spike.stamp'), stamp);
        assert.ok(version().length > 0);
        assert.deepEqual(caches(), [], 'no hash in the stamp: not run');
      }
    } finally {
      fs.renameSync(path.join(root, 'tsconfig.json.off'), path.join(root, 'tsconfig.json'));
    }
  } finally {
    fs.copyFileSync(bundleSrc, path.join(cliDir, 'spike.cjs'));
  }
});

test('a cache named after another bundle is left alone; the bundle writes and uses its own', { skip: !fs.existsSync(bundleSrc) && 'no bundle' }, () => {
  for (const c of caches()) fs.rmSync(path.join(cliDir, c));
  const other = path.join(cliDir, `v8-${'0'.repeat(32)}.cache`);
  const otherBytes = crypto.randomBytes(64);
  fs.writeFileSync(other, otherBytes);
  fs.writeFileSync(path.join(cliDir, 'spike.stamp'), `${mark} ${hash}`);
  version();
  assert.ok(fs.existsSync(cacheFile()), 'its own cache was written');
  assert.ok(fs.readFileSync(other).equals(otherBytes));
  fs.rmSync(other);
});

test('the bundler writes a build-time cache named by the bundle hash next to the bundle', { skip: !fs.existsSync(bundleSrc) && 'no bundle' }, () => {
  const built = path.join(REPO_ROOT, 'dist', 'cli', `v8-${hash.slice(0, 32)}.build.cache`);
  assert.ok(fs.existsSync(built), 'scripts/bundle-cli.mjs wrote the build-time cache');
  assert.ok(fs.statSync(built).size > 1024);
  assert.equal(fs.statSync(built).mode & 0o022, 0);
});

test('a call with only the build-time cache works, writes its own cache and leaves the build cache unchanged; a bad build cache changes nothing', { skip: !fs.existsSync(bundleSrc) && 'no bundle' }, () => {
  const built = path.join(REPO_ROOT, 'dist', 'cli', `v8-${hash.slice(0, 32)}.build.cache`);
  if (!fs.existsSync(built)) return; // reported by the test above
  fs.writeFileSync(path.join(cliDir, 'spike.stamp'), `${mark} ${hash}`);
  try {
    const variants: Array<[string, () => void]> = [
      ['as built', () => fs.copyFileSync(built, buildCacheFile())],
      ['corrupt', () => fs.writeFileSync(buildCacheFile(), crypto.randomBytes(4096), { mode: 0o644 })],
      ['writable by others', () => {
        fs.copyFileSync(built, buildCacheFile());
        fs.chmodSync(buildCacheFile(), 0o666);
      }],
    ];
    if (process.platform !== 'win32') variants.push(['a FIFO', () => spawnSync('mkfifo', [buildCacheFile()])]);
    for (const [what, plant] of variants) {
      for (const c of caches()) fs.rmSync(path.join(cliDir, c));
      fs.rmSync(buildCacheFile(), { force: true });
      plant();
      const before = fs.lstatSync(buildCacheFile());
      assert.ok(version().length > 0, what);
      assert.deepEqual(caches(), [path.basename(cacheFile())], `${what}: the call wrote its own cache`);
      const after = fs.lstatSync(buildCacheFile());
      assert.equal(after.ino, before.ino, `${what}: build cache left alone`);
      assert.equal(after.mtimeMs, before.mtimeMs, `${what}: build cache left alone`);
    }
  } finally {
    fs.rmSync(buildCacheFile(), { force: true });
  }
});
