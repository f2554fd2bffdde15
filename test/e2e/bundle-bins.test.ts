/**
 * scripts/bundle-bins.mjs keeps bundles that are current: `npm test` right after `npm ci` (both
 * build) must not bundle twice, and must not throw away the code caches that runs wrote. Run on
 * a copy of the repository's build (bin/, the script and dist/src/; node_modules linked), so
 * the repository's own bundles are never touched. After a first build there:
 * - nothing changed: "up to date", every output and a run's code cache kept;
 * - one compiled module changed (not a command's first one, so the stamp's mark is unchanged):
 *   everything rebuilt, the old run's code cache gone.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/bin.js';

const repoCli = path.join(REPO_ROOT, 'dist', 'cli');
const skip = !fs.existsSync(path.join(repoCli, 'inputs.json')) && 'no bundles (esbuild missing)';

let root = '';

before(() => {
  if (skip) return;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'bundle-bins-'));
  for (const f of ['package.json', 'tsconfig.json']) fs.copyFileSync(path.join(REPO_ROOT, f), path.join(root, f));
  fs.mkdirSync(path.join(root, 'scripts'));
  fs.copyFileSync(path.join(REPO_ROOT, 'scripts', 'bundle-bins.mjs'), path.join(root, 'scripts', 'bundle-bins.mjs'));
  fs.cpSync(path.join(REPO_ROOT, 'bin'), path.join(root, 'bin'), { recursive: true });
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  fs.cpSync(path.join(REPO_ROOT, 'dist', 'src'), path.join(root, 'dist', 'src'), { recursive: true });
});

after(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

function bundleBins(): string {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'bundle-bins.mjs')], { cwd: os.tmpdir(), encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

test('bundle-bins keeps current bundles and their code caches, and rebuilds when a compiled module changed', { skip }, () => {
  assert.match(bundleBins(), /wrote dist\/cli\/spike\.cjs/, 'the first build');
  const cli = path.join(root, 'dist', 'cli');
  const [, hash] = fs.readFileSync(path.join(cli, 'spike.stamp'), 'latin1').split(' ');
  const runCache = path.join(cli, `v8-${hash!.slice(0, 32)}.cache`);
  fs.writeFileSync(runCache, 'a run wrote this', { mode: 0o644 });
  const before = fs.statSync(path.join(cli, 'spike.cjs'));

  assert.match(bundleBins(), /^bundle-bins: bundles are up to date\n$/);
  assert.ok(fs.existsSync(runCache), "a run's code cache was thrown away");
  assert.equal(fs.statSync(path.join(cli, 'spike.cjs')).ino, before.ino, 'a current bundle was rewritten');

  // Any compiled module that a bundle is made from: here the logger, in every command.
  const log = path.join(root, 'dist', 'src', 'lib', 'log.js');
  // An mtime other than the recorded one (in the past: one at or after a run's start is taken
  // for a compile still running, and the run then records nothing).
  fs.utimesSync(log, new Date(), new Date(Date.now() - 3_600_000));
  const out = bundleBins();
  assert.match(out, /wrote dist\/cli\/spike\.cjs/);
  assert.doesNotMatch(out, /up to date/);
  assert.ok(!fs.existsSync(runCache), 'the code cache of the replaced build survived');
  assert.match(bundleBins(), /up to date/, 'the rebuild recorded its inputs');
});
