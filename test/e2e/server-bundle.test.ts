/**
 * The server binaries' bundles (bin/load-bundle.js, scripts/bundle-bins.mjs; start-up time), on
 * a copy of bin/ and dist/cli/ in a temp folder (dist/src and node_modules linked), as
 * test/e2e/cli-bundle.test.ts does for `spike`:
 *
 * - every command has a current bundle, stamp and build-time code cache that only its owner
 *   can write;
 * - each server bin's build-time cache is accepted by V8 when that bin runs it, so it was made
 *   under the V8 flags the bin sets before its code loads (the Keeper's, src/keeper/lean.ts):
 *   planted as the run's own cache, it is not replaced; under one more V8 flag it is refused
 *   and replaced (the control that shows the check can fail);
 * - a command of several modules (spike-agent: main and hardenCli) runs from dist/src/ with a
 *   stamp that does not match the compiled code.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../helpers/bin.js';

const SERVERS = ['spike-nexus', 'spike-keeper', 'spike-agent', 'spike-bootstrap', 'spike-dev'] as const;
const repoCli = path.join(REPO_ROOT, 'dist', 'cli');
const bundled = fs.existsSync(path.join(repoCli, 'spike-keeper.stamp'));
const skip = !bundled && 'no bundles (esbuild missing)';

let root = '';
let cliDir = '';
/** The repository's bin/load-bundle.js (plain JavaScript, loaded by URL). */
const loader = await import(pathToFileURL(path.join(REPO_ROOT, 'bin', 'load-bundle.js')).href) as {
  COMMANDS: Record<string, string[]>;
  BUILD_INFO: string;
  compiledMark(name: string): string;
};

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'server-bundle-'));
  fs.mkdirSync(path.join(root, 'bin'));
  for (const f of fs.readdirSync(path.join(REPO_ROOT, 'bin'))) fs.copyFileSync(path.join(REPO_ROOT, 'bin', f), path.join(root, 'bin', f));
  fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(root, 'package.json'));
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  fs.mkdirSync(path.join(root, 'dist'));
  fs.symlinkSync(path.join(REPO_ROOT, 'dist', 'src'), path.join(root, 'dist', 'src'));
  cliDir = path.join(root, 'dist', 'cli');
  fs.mkdirSync(cliDir, { mode: 0o755 });
  fs.chmodSync(cliDir, 0o755);
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

const ENTRY: Record<string, string> = {
  'spike': 'pilot/main.js', 'spike-nexus': 'nexus/main.js', 'spike-keeper': 'keeper/main.js',
  'spike-agent': 'agent/main.js', 'spike-bootstrap': 'bootstrap/main.js', 'spike-dev': 'dev/main.js',
};

/**
 * `<hash>` of a command's stamp (the bundle's sha256), checking that the stamp matches the
 * compiled code: otherwise every bin would run from dist/src/ and the checks below would be
 * empty.
 */
function stampHash(name: string): string {
  const [mark, hash] = fs.readFileSync(path.join(repoCli, `${name}.stamp`), 'latin1').split(' ');
  assert.match(hash ?? '', /^[0-9a-f]{64}$/, `${name}: stamp without a hash`);
  assert.equal(mark, loader.compiledMark(name), `${name}: the bundle is older than the compiled code (run scripts/bundle-bins.mjs after tsc)`);
  return hash!;
}

/** Copies one command's bundle and stamp into the temp folder, no code cache. */
function install(name: string): void {
  for (const f of fs.readdirSync(cliDir)) fs.rmSync(path.join(cliDir, f));
  for (const f of [`${name}.cjs`, `${name}.stamp`]) fs.copyFileSync(path.join(repoCli, f), path.join(cliDir, f));
}

function help(name: string, nodeFlags: string[] = []): string {
  const r = spawnSync(process.execPath, [...nodeFlags, path.join(root, 'bin', `${name}.js`), '--help'], {
    encoding: 'utf8', timeout: 120_000, env: { PATH: process.env['PATH'] ?? '' },
  });
  assert.equal(r.status, 0, `${name} --help: ${r.stderr}`);
  return r.stdout + r.stderr;
}

test('every command has a current bundle, a stamp and a build-time code cache only its owner can write', { skip }, async () => {
  const { COMMANDS } = loader;
  assert.deepEqual(Object.keys(COMMANDS).sort(), Object.keys(ENTRY).sort());
  for (const [name, mods] of Object.entries(COMMANDS)) assert.equal(mods[0], ENTRY[name]);
  for (const name of Object.keys(COMMANDS)) {
    const built = path.join(repoCli, `v8-${stampHash(name).slice(0, 32)}.build.cache`);
    assert.ok(fs.existsSync(path.join(repoCli, `${name}.cjs`)), `${name}: no bundle`);
    assert.ok(fs.existsSync(built), `${name}: no build-time cache`);
    assert.equal(fs.statSync(built).mode & 0o022, 0, `${name}: build-time cache writable by others`);
  }
  assert.equal(fs.statSync(repoCli).mode & 0o022, 0, 'dist/cli writable by others');
});

test('each server bin accepts its build-time cache (made under the V8 flags it sets); under another flag V8 refuses it', { skip }, () => {
  for (const name of SERVERS) {
    const hash = stampHash(name).slice(0, 32);
    const own = path.join(cliDir, `v8-${hash}.cache`);
    const plant = (): fs.Stats => {
      install(name);
      fs.copyFileSync(path.join(repoCli, `v8-${hash}.build.cache`), own);
      return fs.statSync(own);
    };
    let planted = plant();
    assert.match(help(name), /usage/i);
    let now = fs.statSync(own);
    assert.ok(now.ino === planted.ino && now.mtimeMs === planted.mtimeMs, `${name}: its build-time cache was refused and replaced`);

    planted = plant();
    help(name, ['--stack-size=900']);
    now = fs.statSync(own);
    assert.ok(now.ino !== planted.ino, `${name}: a cache made under other V8 flags was not replaced`);
  }
});

test('the build information a stamp is marked by is the one the incremental build writes (tsconfig.json tsBuildInfoFile)', () => {
  const tsconfig = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: { tsBuildInfoFile?: string } };
  assert.equal(path.resolve(REPO_ROOT, tsconfig.compilerOptions.tsBuildInfoFile ?? ''), loader.BUILD_INFO);
  assert.ok(fs.existsSync(loader.BUILD_INFO), 'the npm scripts build incrementally (tsc -b .), which writes it');
});

test('a command of several modules (spike-agent) runs from dist/src/ when its stamp does not match the compiled code', { skip }, () => {
  install('spike-agent');
  fs.writeFileSync(path.join(cliDir, 'spike-agent.cjs'), '(function () { throw new Error("stale bundle ran"); })');
  const mtime = fs.statSync(path.join(REPO_ROOT, 'dist', 'src', ENTRY['spike-agent']!)).mtimeMs;
  fs.writeFileSync(path.join(cliDir, 'spike-agent.stamp'), `${mtime + 1}/- ${stampHash('spike-agent')}`);
  assert.match(help('spike-agent'), /usage: spike-agent/i);
  assert.deepEqual(fs.readdirSync(cliDir).filter((f) => f.endsWith('.cache')), [], 'no cache for a bundle that was not used');
});
