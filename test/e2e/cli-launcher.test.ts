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
import os from 'node:os';
import path from 'node:path';
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

test('a `spike` call runs as CommonJS: Node\'s machinery for running ES modules is never loaded (its start-up cost)', () => {
  // A --require'd probe records, at exit, every internal module the process loaded. Node loads
  // a few of its ES module files at every start; these three run an ES module (source read,
  // translated, linked and evaluated as a module job).
  const running = ['internal/modules/esm/load', 'internal/modules/esm/translators', 'internal/modules/esm/module_job'];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-cjs-'));
  try {
    const probe = path.join(dir, 'probe.cjs');
    fs.writeFileSync(probe, 'process.on(\'exit\', () => require(\'node:fs\').writeFileSync(process.env.PROBE_OUT, process.moduleLoadList.join(\'\\n\')));\n');
    const esmRunning = (argv: string[], name: string): string[] => {
      const out = path.join(dir, name);
      const r = run(argv, { NODE_OPTIONS: `--require "${probe}"`, PROBE_OUT: out });
      assert.equal(r.code, 0, r.stderr);
      const loaded = fs.readFileSync(out, 'utf8').split('\n');
      assert.ok(loaded.includes('NativeModule vm'), 'the command ran (from its bundle)');
      return running.filter((m) => loaded.includes(`NativeModule ${m}`));
    };
    assert.deepEqual(esmRunning([binPath('spike'), 'secret', 'get', '--help'], 'cli.txt'), []);
    // The same probe on an ES module entry sees all three (the check can fail).
    const mjs = path.join(dir, 'entry.mjs');
    fs.writeFileSync(mjs, 'import "node:vm";\n');
    assert.deepEqual(esmRunning([process.execPath, mjs], 'mjs.txt'), running);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a bin that fails to load exits 1 with the error, whatever --unhandled-rejections says (never 0)', () => {
  // bin/ copied where there is no dist/: loading the command's code fails.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-fail-'));
  try {
    fs.cpSync(path.dirname(binPath('spike')), path.join(dir, 'bin'), { recursive: true });
    for (const bin of ['spike', 'spike-nexus', 'spike-keeper']) {
      for (const mode of ['', 'none', 'warn']) {
        const r = run([process.execPath, path.join(dir, 'bin', `${bin}.js`), '--version'], mode === '' ? {} : { NODE_OPTIONS: `--unhandled-rejections=${mode}` });
        assert.equal(r.code, 1, `${bin} (${mode || 'default'}): exit ${r.code}; ${r.stderr}`);
        assert.match(r.stderr, /Cannot find module|ERR_MODULE_NOT_FOUND/, `${bin} (${mode || 'default'})`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
