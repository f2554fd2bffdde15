/**
 * `spike secret put <path> key=-` on a real terminal (a pseudo-terminal made by util-linux
 * `script`): the value is read without echo, so what the user types never appears on the
 * terminal (scrollback, screen sharing, session recordings); a multi-line paste is refused
 * instead of keeping its first line. No stack runs: the value is read before the CLI looks for
 * the Workload API, whose absence then ends the call (the stored value is checked by
 * src/pilot/values.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { binEnvPath, binPath } from '../helpers/bin.js';
import { tempDir } from '../helpers/temp.js';

const HAVE_SCRIPT = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

/** Runs `spike <args>` on a pseudo-terminal; types `keys` once the prompt is on screen; returns everything the terminal showed. */
async function onTerminal(args: string[], keys: string, after = ''): Promise<{ screen: string; code: number | null }> {
  const dir = tempDir('spike-pty-');
  const cmd = [binPath('spike'), ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ') + after;
  const child = spawn('script', ['-qec', cmd, '/dev/null'], {
    env: { PATH: binEnvPath(), HOME: dir, SPIFFE_ENDPOINT_SOCKET: `unix://${dir}/none.sock`, TERM: 'dumb' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  let typed = false;
  const closed = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  child.stdout.on('data', (c: Buffer) => {
    screen += c.toString('utf8');
    // Type only once the CLI asked: before that the terminal is still in its echoing mode.
    if (!typed && screen.includes('(hidden; Enter ends it): ')) {
      typed = true;
      child.stdin.write(keys);
    }
  });
  const code = await closed;
  child.stdin.destroy();
  return { screen, code };
}

test('key=- at a terminal: the typed value is never shown on the terminal', { skip: !HAVE_SCRIPT && 'util-linux script is not installed', timeout: 120_000 }, async () => {
  const { screen, code } = await onTerminal(['secret', 'put', 'apps/db', 'password=-'], 'Sup3r-s3cret\r');
  assert.match(screen, /Value for key 'password' \(hidden; Enter ends it\): /);
  assert.ok(!screen.includes('Sup3r'), `the typed value appeared on the terminal:\n${screen}`);
  assert.match(screen, /no Workload API at/, 'the value was read, then the call ended at the missing agent');
  assert.notEqual(code, 0);
});

test('key=- at a terminal: a multi-line paste is refused, and none of it is shown', { skip: !HAVE_SCRIPT && 'util-linux script is not installed', timeout: 120_000 }, async () => {
  const { screen, code } = await onTerminal(['secret', 'put', 'apps/tls', 'pem=-'], '-----BEGIN KEY-----\rQUJD\r-----END KEY-----\r');
  assert.match(screen, /More than one line was typed or pasted for key 'pem'; a terminal gives one line \(use 'pem=@file' or a pipe for more\)\./);
  assert.ok(!screen.includes('BEGIN') && !screen.includes('QUJD'), `pasted text appeared on the terminal:\n${screen}`);
  assert.doesNotMatch(screen, /no Workload API/, 'refused before any connection');
  assert.equal(code, 1);
});

test('key=- at a terminal: a paste longer than one terminal read is refused and read to its end: none of it is echoed or left for the shell', { skip: !HAVE_SCRIPT && 'util-linux script is not installed', timeout: 120_000 }, async () => {
  // 200 lines of 64 characters (a PEM-sized paste): a pseudo-terminal hands it over in several reads.
  const lines = Array.from({ length: 200 }, (_, i) => `PASTE${String(i).padStart(4, '0')}`.padEnd(64, 'Q'));
  // After spike, `cat` stands for the shell: it would read (and the terminal echo) whatever spike left unread.
  const { screen } = await onTerminal(['secret', 'put', 'apps/tls', 'pem=-'], lines.map((l) => `${l}\r`).join(''), '; echo "spike exit $?"; exec timeout 2 cat');
  assert.match(screen, /More than one line was typed or pasted for key 'pem'/);
  assert.match(screen, /spike exit 1/);
  assert.ok(!screen.includes('PASTE'), `pasted text appeared on the terminal:\n${screen.slice(0, 2000)}`);
});
