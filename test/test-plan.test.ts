/**
 * scripts/test-plan.mjs, the plan `npm test` runs by: unit test files are packed into shared
 * processes (generated group modules), each end-to-end file and each unit file marked
 * `// test-process: own` runs alone, heaviest first. Run in a scratch folder with its own
 * `dist/` (the script works relative to its working directory), so the real run's generated
 * groups are never touched.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/bin.js';
import { tempDir } from './helpers/temp.js';

const PLAN = path.join(REPO_ROOT, 'scripts', 'test-plan.mjs');

function write(root: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

const unitTest = (name: string): string => `import { test } from 'node:test';\ntest(${JSON.stringify(name)}, () => {});\n`;

test('test plan: unit files share generated group processes; e2e and `test-process: own` files run alone; heaviest first; every file exactly once', () => {
  const root = tempDir('spike-test-plan-');
  const units = Array.from({ length: 12 }, (_, i) => `dist/src/m${i}/u${i}.test.js`);
  for (const u of units) write(root, u, unitTest(u));
  write(root, 'dist/bench/h.test.js', unitTest('bench'));
  write(root, 'dist/src/own.test.js', `// A file with process-wide state.\n// test-process: own\n${unitTest('own')}`);
  write(root, 'dist/test/e2e/big.test.js', unitTest('big'));
  write(root, 'dist/test/e2e/new.test.js', unitTest('new'));
  // Weights: u0 is heavy (a group of its own), big is the heaviest; new is unlisted (60 s).
  write(root, 'weights.txt', '# comment\n200.0 dist/test/e2e/big.test.js\n35.0 dist/src/m0/u0.test.js\n12.0 dist/src/m1/u1.test.js\n');
  // Left over: a file of an older plan, a dead run's folder and this run's own earlier folder;
  // a live run's folder (this test process stands for it) must be left alone.
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  write(root, 'dist/.test-groups/stale.test.mjs', '// left over from an older plan\n');
  write(root, `dist/.test-groups/run-${dead}/unit-1.test.mjs`, '// a dead run\n');
  // This run's id is a live process (as test.sh's is during its run): its earlier folder is
  // still replaced, not kept as another live run's.
  const self = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
  const runId = String(self.pid);
  write(root, `dist/.test-groups/run-${runId}/unit-9.test.mjs`, '// this run, earlier\n');
  write(root, `dist/.test-groups/run-${process.pid}/unit-1.test.mjs`, '// a live run\n');
  const all = [...units, 'dist/bench/h.test.js', 'dist/src/own.test.js', 'dist/test/e2e/big.test.js', 'dist/test/e2e/new.test.js'];
  const runEnv = { ...process.env, TEST_RUN_ID: runId };
  let out: string[];
  try {
    out = execFileSync(process.execPath, [PLAN, 'weights.txt', ...all], { cwd: root, encoding: 'utf8', env: runEnv }).trim().split('\n');
  } finally {
    self.kill();
  }

  const groups = out.filter((f) => f.startsWith('dist/.test-groups/'));
  assert.ok(groups.every((g) => g.startsWith(`dist/.test-groups/run-${runId}/`)), 'this run\'s groups in its own folder');
  assert.deepEqual(out.filter((f) => !groups.includes(f)).sort(), ['dist/src/own.test.js', 'dist/test/e2e/big.test.js', 'dist/test/e2e/new.test.js']);
  assert.equal(out[0], 'dist/test/e2e/big.test.js', 'heaviest first');
  assert.equal(out[1], 'dist/test/e2e/new.test.js', 'an unlisted e2e file counts as 60 s');
  assert.deepEqual(fs.readdirSync(path.join(root, 'dist/.test-groups')).sort(), [`run-${process.pid}`, `run-${runId}`].sort(), 'stale groups removed, the live run\'s kept');
  assert.deepEqual(fs.readdirSync(path.join(root, `dist/.test-groups/run-${runId}`)).sort(), groups.map((g) => path.basename(g)).sort(), 'this run\'s earlier groups replaced');
  assert.ok(fs.existsSync(path.join(root, `dist/.test-groups/run-${process.pid}/unit-1.test.mjs`)));
  // 35 + 12 + 11 × 1 s = 58 s of unit files: two groups of about 30 s.
  assert.equal(groups.length, 2);
  const imported = groups.flatMap((g) => [...fs.readFileSync(path.join(root, g), 'utf8').matchAll(/await import\("([^"]+)"\);/g)].map((m) => path.join(path.dirname(g), m[1]!)));
  assert.deepEqual(imported.sort(), [...units, 'dist/bench/h.test.js'].sort(), 'each unit file in exactly one group');

  // A group really runs its files' tests, in one process (the second: u1 and the 1 s files).
  const env = { ...process.env };
  delete env['NODE_TEST_CONTEXT']; // else the nested runner reports in the parent's protocol
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', groups[1]!], { cwd: root, encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const count = fs.readFileSync(path.join(root, groups[1]!), 'utf8').match(/await import/g)!.length;
  assert.ok(count > 1, 'the group holds several files');
  assert.match(r.stdout, new RegExp(`^# pass ${count}$`, 'm'));
});

test('test plan: without arguments it refuses with its usage (no silent empty run)', () => {
  const r = spawnSync(process.execPath, [PLAN], { encoding: 'utf8', cwd: tempDir('spike-test-plan-') });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage/);
});

test('test plan: a unit file that fails to import fails as its own named test, and the rest of its group still runs', () => {
  const root = tempDir('spike-test-plan-');
  write(root, 'dist/src/a.test.js', unitTest('a runs'));
  write(root, 'dist/src/b.test.js', "throw new Error('broken at import');\n");
  write(root, 'dist/src/c.test.js', unitTest('c runs'));
  const files = ['dist/src/a.test.js', 'dist/src/b.test.js', 'dist/src/c.test.js'];
  const out = execFileSync(process.execPath, [PLAN, 'none.txt', ...files], { cwd: root, encoding: 'utf8' }).trim().split('\n');
  assert.equal(out.length, 1, 'three 1 s files make one group');
  const env = { ...process.env };
  delete env['NODE_TEST_CONTEXT'];
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', out[0]!], { cwd: root, encoding: 'utf8', env });
  assert.notEqual(r.status, 0);
  assert.match(r.stdout, /^not ok \d+ - import dist\/src\/b\.test\.js$/m);
  assert.match(r.stdout, /^ok \d+ - a runs$/m);
  assert.match(r.stdout, /^ok \d+ - c runs$/m);
});
