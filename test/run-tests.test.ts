/**
 * scripts/run-tests.mjs, the runner `npm test` uses: files in the given order, CPU-bound
 * process files and in-process unit files in two lanes side by side, one merged report with
 * one summary, exit code 1 on a failure. Run in a scratch folder with its own `dist/`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/bin.js';
import { tempDir } from './helpers/temp.js';

const RUNNER = path.join(REPO_ROOT, 'scripts', 'run-tests.mjs');

function write(root: string, rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
}

/**
 * A test file whose test notes in `log` when it starts and ends; in between it waits until
 * `waitFor` appears in the log (at most 30 s), else 200 ms.
 */
const timedFile = (name: string, log: string, waitFor?: string, extra = ''): string =>
  `import fs from 'node:fs';\nimport { test } from 'node:test';\n`
  + `const seen = () => fs.existsSync(${JSON.stringify(log)}) && fs.readFileSync(${JSON.stringify(log)}, 'utf8').includes(${JSON.stringify(waitFor ?? '')});\n`
  + `test(${JSON.stringify(name)}, async () => {\n`
  + `  fs.appendFileSync(${JSON.stringify(log)}, ${JSON.stringify(`${name} start\n`)});\n`
  + (waitFor === undefined
    ? '  await new Promise((r) => setTimeout(r, 200));\n'
    : '  for (const end = Date.now() + 30_000; !seen() && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));\n')
  + `  fs.appendFileSync(${JSON.stringify(log)}, ${JSON.stringify(`${name} end\n`)});\n});\n${extra}`;

function runner(root: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env['NODE_TEST_CONTEXT']; // else the nested runner reports in the parent's protocol
  return spawnSync(process.execPath, [RUNNER, ...args], { cwd: root, encoding: 'utf8', env });
}

/**
 * The process lane at concurrency 1 runs e1 then e2; the file at `rel` (made by `content` from
 * the order log's path) waits until e2 has started, which happens only if it does not hold the
 * one process slot (else it gives up after 30 s and the order shows it). Returns the run and
 * the order log.
 */
function besideProcessLane(root: string, rel: string, content: (log: string) => string, argv: string[]): { r: ReturnType<typeof runner>; order: string[] } {
  const log = path.join(root, 'order.log');
  write(root, 'dist/test/e2e/e1.test.js', timedFile('e1', log));
  write(root, 'dist/test/e2e/e2.test.js', timedFile('e2', log));
  write(root, rel, content(log));
  const r = runner(root, ['--test-concurrency=1', '--unit-concurrency=1', '--test-reporter=tap', '--test-reporter-destination=stdout', ...argv]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  return { r, order: fs.readFileSync(log, 'utf8').trim().split('\n') };
}

test('test runner: a unit lane runs beside the process lane (a waiting unit file never holds a process slot); one TAP report, numbered once, one summary with both lanes\' counts', () => {
  const { r, order } = besideProcessLane(tempDir('spike-run-tests-'), 'dist/.test-groups/run-1/unit-1.test.mjs', (log) => timedFile('u', log, 'e2 start', "test('u2', () => {});\n"),
    ['dist/test/e2e/e1.test.js', 'dist/.test-groups/run-1/unit-1.test.mjs', 'dist/test/e2e/e2.test.js']);
  // The two lanes overlap: e2 started while u was still running; e1 and e2 kept their order,
  // one at a time.
  assert.ok(order.indexOf('e2 start') < order.indexOf('u end'), order.join(', '));
  assert.ok(order.indexOf('e1 end') < order.indexOf('e2 start'), order.join(', '));
  const numbers = [...r.stdout.matchAll(/^(?:not )?ok (\d+) - /gm)].map((m) => Number(m[1]));
  assert.deepEqual([...numbers].sort((a, b) => a - b), [1, 2, 3, 4], 'top-level results numbered once across both lanes');
  assert.equal(r.stdout.match(/^1\.\.\d+$/gm)?.join(), '1..4', 'one plan');
  assert.equal(r.stdout.match(/^# tests \d+$/gm)?.join(), '# tests 4', 'one summary');
  assert.match(r.stdout, /^# pass 4$/m);
  assert.match(r.stdout, /^# fail 0$/m);
});

test('test runner: a failure in either lane fails the run (exit 1) and is counted once; a todo failure does not', () => {
  const root = tempDir('spike-run-tests-');
  write(root, 'dist/test/e2e/ok.test.js', "import { test } from 'node:test';\ntest('fine', () => {});\ntest('later', { todo: true }, () => { throw new Error('not yet'); });\n");
  write(root, 'dist/src/bad.test.js', "import { test } from 'node:test';\ntest('broken', () => { throw new Error('boom'); });\n");
  const both = runner(root, ['--test-reporter=tap', '--test-reporter-destination=stdout', 'dist/test/e2e/ok.test.js', 'dist/src/bad.test.js']);
  assert.equal(both.status, 1, both.stdout + both.stderr);
  assert.match(both.stdout, /^not ok \d+ - broken$/m);
  assert.match(both.stdout, /^# fail 1$/m, 'counted once; a todo failure is not a failure');
  assert.match(both.stdout, /^# todo 1$/m);
  const todoOnly = runner(root, ['--test-reporter=tap', '--test-reporter-destination=stdout', 'dist/test/e2e/ok.test.js']);
  assert.equal(todoOnly.status, 0, todoOnly.stdout + todoOnly.stderr);
});

test('test runner: an unknown option or a bad lane size is refused, never ignored', () => {
  const root = tempDir('spike-run-tests-');
  write(root, 'dist/src/a.test.js', "import { test } from 'node:test';\ntest('a', () => {});\n");
  for (const bad of ['--unit-concurrency=0', '--unit-concurrency=x', '--test-concurrency=1.5', '--no-such-option=1']) {
    const r = runner(root, [bad, 'dist/src/a.test.js']);
    assert.equal(r.status, 1, bad);
    assert.match(r.stderr, /^run-tests: /, bad);
  }
});

test('test runner: a process file marked `// test-lane: waiting` runs in the second lane, beside the process lane', () => {
  const { r, order } = besideProcessLane(tempDir('spike-run-tests-'), 'dist/test/e2e/w.test.js', (log) => `// test-lane: waiting (trickles)\n${timedFile('w', log, 'e2 start')}`,
    ['dist/test/e2e/w.test.js', 'dist/test/e2e/e1.test.js', 'dist/test/e2e/e2.test.js']);
  assert.ok(order.indexOf('e2 start') < order.indexOf('w end'), order.join(', '));
  assert.ok(order.indexOf('e1 end') < order.indexOf('e2 start'), order.join(', '));
  assert.match(r.stdout, /^# pass 3$/m);
});
