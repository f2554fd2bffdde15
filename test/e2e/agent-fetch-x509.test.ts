/**
 * `spike-agent fetch-x509` against a real dev agent (bin/spike-agent.js as a child process):
 * it writes the caller's SVID chain, key (0600) and bundle as PEM files that Node's own TLS
 * and X.509 code accept, and fails with one line when the socket is missing.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { binPath, spawnBin } from '../helpers/bin.js';
import { tempDir } from '../helpers/temp.js';

const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const run = promisify(execFile);
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

async function startAgent(dir: string): Promise<string> {
  const child = spawnBin('spike-agent', [
    '--state-dir', path.join(dir, 'state'),
    '--socket-dir', path.join(dir, 'sockets'),
    '--identity', `pilot=${PILOT}`,
  ], { cwd: dir });
  children.push(child);
  child.stdout!.resume();
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`agent not ready: ${err}`)), 60_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('spike-agent ready\n')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return path.join(dir, 'sockets', 'pilot.sock');
}

test('spike-agent fetch-x509 writes svid.0.pem, svid.0.key (0600) and bundle.0.pem that verify', async () => {
  const dir = tempDir('agent-fetch-');
  const sock = await startAgent(dir);
  const out = path.join(dir, 'out');
  // A relative --socket path resolves against the current directory, like the other folders.
  const { stdout } = await run(process.execPath, [binPath('spike-agent'), 'fetch-x509', '--socket', path.relative(dir, sock), '--write', out], { cwd: dir, timeout: 60_000 });
  assert.match(stdout, new RegExp(`^SPIFFE ID: ${PILOT}$`, 'm'));
  assert.deepEqual(fs.readdirSync(out).sort(), ['bundle.0.pem', 'svid.0.key', 'svid.0.pem']);
  assert.equal(fs.statSync(out).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(out, 'svid.0.key')).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(out, 'svid.0.pem')).mode & 0o777, 0o644);

  const leaf = new X509Certificate(fs.readFileSync(path.join(out, 'svid.0.pem')));
  assert.equal(leaf.subjectAltName, `URI:${PILOT}`);
  const ca = new X509Certificate(fs.readFileSync(path.join(out, 'bundle.0.pem')));
  assert.ok(leaf.verify(ca.publicKey), 'the SVID is signed by the bundle CA');
  assert.ok(ca.raw.equals(new X509Certificate(fs.readFileSync(path.join(dir, 'state', 'ca.crt'))).raw), 'bundle = the agent CA');
  const key = createPrivateKey(fs.readFileSync(path.join(out, 'svid.0.key')));
  assert.deepEqual(
    createPublicKey(key).export({ format: 'der', type: 'spki' }),
    leaf.publicKey.export({ format: 'der', type: 'spki' }),
    'the key belongs to the certificate',
  );

  // A second fetch replaces the files (no leftovers from the temporary names).
  await run(process.execPath, [binPath('spike-agent'), 'fetch-x509', '--socket', `unix://${sock}`, '--write', out], { timeout: 60_000 });
  assert.deepEqual(fs.readdirSync(out).sort(), ['bundle.0.pem', 'svid.0.key', 'svid.0.pem']);
});

test('spike-agent fetch-x509 with no socket there: exit 1, one line, nothing written', async () => {
  const dir = tempDir('agent-fetch-none-');
  const out = path.join(dir, 'out');
  const r = await run(process.execPath, [binPath('spike-agent'), 'fetch-x509', '--socket', path.join(dir, 'nope.sock'), '--write', out, '--timeout', '2s'], { timeout: 60_000 }).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^spike-agent fetch-x509: .*Workload API/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.equal(fs.existsSync(out), false);
});
