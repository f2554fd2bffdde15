/**
 * bin/spike.js is both a shell script and JavaScript (its launcher line, issue 15): run as a
 * command it starts itself as `node --use-openssl-ca -- <file> <args>`; run as `node
 * bin/spike.js` it is plain JavaScript. These tests run the real file both ways: the flag is on
 * the running Node's command line, arguments reach the CLI byte for byte (no shell expansion,
 * no option taken by Node), and NODE_OPTIONS asking for Node's bundled store still works.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { binCommand, binEnvPath, binPath } from '../helpers/bin.js';

const env = (extra: Record<string, string> = {}): Record<string, string> => ({ PATH: binEnvPath(), HOME: '/nonexistent', ...extra });

function run(argv: string[], extra: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const [file, ...pre] = argv;
  const r = spawnSync(file!, pre, { env: env(extra), encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the launcher runs the CLI as a command and as `node bin/spike.js`, with the same output', () => {
  assert.deepEqual(binCommand('spike'), [binPath('spike')], 'tests start `spike` as a command');
  assert.ok((fs.statSync(binPath('spike')).mode & 0o111) !== 0, 'bin/spike.js is executable');
  const direct = run([binPath('spike'), '--version']);
  const viaNode = run([process.execPath, binPath('spike'), '--version']);
  assert.equal(direct.code, 0, direct.stderr);
  assert.equal(viaNode.code, 0, viaNode.stderr);
  assert.match(direct.stdout, /\d+\.\d+\.\d+/);
  assert.equal(direct.stdout, viaNode.stdout);
});

test('the launcher passes arguments through unchanged: spaces, shell syntax, and `--`-style words are the CLI\'s', () => {
  const odd = 'x y $(id) `id` "q" \\ *';
  const r = run([binPath('spike'), odd]);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim(), `Error: unknown command '${odd}'`);
  // A word Node would take as its own option reaches the CLI (after the launcher's `--`).
  const opt = run([binPath('spike'), '--inspect']);
  assert.notEqual(opt.code, 0);
  assert.match(opt.stderr, /unknown option '--inspect'/);
  assert.doesNotMatch(opt.stderr, /Debugger listening/);
});

test('NODE_OPTIONS=--use-bundled-ca (which Node refuses together with --use-openssl-ca) still runs the CLI', () => {
  const r = run([binPath('spike'), '--version'], { NODE_OPTIONS: '--use-bundled-ca' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\d+\.\d+\.\d+/);
});

/** Starts a `spike` that waits on stdin and returns the running Node's argv (from /proc), then ends it. */
async function runningArgv(extra: Record<string, string> = {}): Promise<string[]> {
  const child = spawn(binPath('spike'), ['operator', 'verify-shard', '-'], { env: env(extra), stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  try {
    // The shell execs Node in the same process: wait until that happened (Node's argv names the file).
    for (;;) {
      let argv: string[] = [];
      try {
        argv = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      } catch { /* not there yet */ }
      if (argv.includes(binPath('spike')) && argv.includes('verify-shard') && !/(^|\/)(ba|da)?sh$/.test(argv[0] ?? '')) return argv;
      if (child.exitCode !== null) throw new Error('spike exited before its argv could be read');
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    child.stdin.end();
    await exited;
  }
}

test('run as a command, the CLI\'s Node runs with --use-openssl-ca, before `--` and the file', { skip: !fs.existsSync('/proc/self/cmdline') && 'no /proc', timeout: 120_000 }, async () => {
  const argv = await runningArgv();
  const file = argv.indexOf(binPath('spike'));
  assert.ok(argv.indexOf('--use-openssl-ca') > 0 && argv.indexOf('--use-openssl-ca') < file, argv.join(' '));
  assert.equal(argv[file - 1], '--');
  const bundled = await runningArgv({ NODE_OPTIONS: '--use-bundled-ca' });
  assert.ok(!bundled.includes('--use-openssl-ca'), bundled.join(' '));
});
