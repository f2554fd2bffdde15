/**
 * Where `spike` goes (issue 11 part 1): explicit settings win; the dev-stack hint in `./.spike`
 * is used only in a form a hostile checkout cannot forge (a socket owned by the caller in a
 * 0700 folder owned by the caller, plus a loopback Nexus URL), and nothing else from the
 * folder is ever taken: no tcp:// Workload API, no remote Nexus, no trust roots, no recovery
 * folder. Accept/reject tables for each rule.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describeSource, devDir, parseEnvFile, resolvePilotEnv } from './env.js';
import { DEFAULT_WORKLOAD_API_ENDPOINT as DEFAULT_WORKLOAD_ENDPOINT } from '../sdk/index.js';
import { isLoopbackNexusUrl } from './devhint.js';
import { DEFAULT_NEXUS_URL } from '../sdk/urls.js';

const servers: net.Server[] = [];
const temps: string[] = [];
after(() => {
  for (const s of servers) s.close();
  for (const t of temps) fs.rmSync(t, { recursive: true, force: true });
});
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

async function listenSocket(p: string): Promise<void> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(p, r));
  servers.push(s);
}

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-env-'));
  temps.push(d);
  return d;
}

const GOOD_ENV = '# written by npm start\nSPIKE_NEXUS_API_URL=https://localhost:18553\n';

/** A folder as `npm start` leaves it: .spike 0700, sockets/ 0700 with live sockets, env 0600. */
async function devFolder(envText = GOOD_ENV): Promise<string> {
  const cwd = tmp();
  const dir = path.join(cwd, '.spike');
  fs.mkdirSync(path.join(dir, 'sockets'), { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  fs.chmodSync(path.join(dir, 'sockets'), 0o700);
  for (const n of ['pilot', 'recover', 'restore']) await listenSocket(path.join(dir, 'sockets', `${n}.sock`));
  fs.writeFileSync(path.join(dir, 'env'), envText, { mode: 0o600 });
  return cwd;
}

const sockOf = (cwd: string, n: string): string => path.join(cwd, '.spike', 'sockets', `${n}.sock`);

test('parseEnvFile: NAME=value lines, comments, quotes, export; only SPIKE_/SPIFFE_ names', () => {
  const e = parseEnvFile('# c\n\nSPIKE_A=1\nexport SPIKE_B="two words"\nSPIFFE_ENDPOINT_SOCKET=unix:///x\nPATH=/evil\nLD_PRELOAD=x\nbad line\n');
  assert.deepEqual({ ...e }, { SPIKE_A: '1', SPIKE_B: 'two words', SPIFFE_ENDPOINT_SOCKET: 'unix:///x' });
});

test('dev folder: ./.spike or $SPIKE_DEV_DIR', () => {
  assert.equal(devDir({}, '/w'), '/w/.spike');
  assert.equal(devDir({ SPIKE_DEV_DIR: 'state' }, '/w'), '/w/state');
  assert.equal(devDir({ SPIKE_DEV_DIR: '/abs' }, '/w'), '/abs');
});

test('dev-stack Nexus URL: only one loopback https URL with a port (accept/reject table)', () => {
  const accept = ['https://127.0.0.1:8553', 'https://localhost:1', 'https://[::1]:8553', 'https://127.0.0.1:8553/', 'https://LOCALHOST:8553'];
  const reject = [
    'http://127.0.0.1:8553', // plaintext
    'https://127.0.0.1', // no port
    'https://localhost', // no port
    'https://10.0.0.1:8553',
    'https://192.0.2.2:8553',
    'https://nexus.example.com:8553',
    'https://127.0.0.2:8553', // only the canonical loopback names
    'https://localhost.attacker.example:8553',
    'https://127.0.0.1.nip.io:8553',
    'https://[::ffff:127.0.0.1]:8553',
    'https://user@127.0.0.1:8553',
    'https://u:p@localhost:8553',
    'https://127.0.0.1:8553/prefix',
    'https://127.0.0.1:8553/?x=1',
    'https://127.0.0.1:8553/#f',
    'https://127.0.0.1:8553,https://nexus.example.com:8553',
    'tcp://127.0.0.1:8553',
    'unix:///tmp/x.sock',
    '',
    'not a url',
  ];
  for (const u of accept) assert.equal(isLoopbackNexusUrl(u), true, u);
  for (const u of reject) assert.equal(isLoopbackNexusUrl(u), false, u);
});

test('after npm start: role sockets and the loopback Nexus URL are used, each with its source', async () => {
  const cwd = await devFolder();
  const op = resolvePilotEnv({ env: {}, cwd, role: 'operator' });
  assert.equal(op.endpoint, `unix://${sockOf(cwd, 'pilot')}`);
  assert.deepEqual(op.endpointSource, { kind: 'dev', path: sockOf(cwd, 'pilot') });
  assert.equal(op.nexusUrl, 'https://localhost:18553');
  assert.equal(op.env['SPIKE_NEXUS_API_URL'], 'https://localhost:18553');
  assert.deepEqual(op.nexusUrlSource, { kind: 'dev', path: path.join(cwd, '.spike', 'env') });
  assert.deepEqual(op.warnings, []);
  assert.equal(resolvePilotEnv({ env: {}, cwd, role: 'recover' }).endpoint, `unix://${sockOf(cwd, 'recover')}`);
  assert.equal(resolvePilotEnv({ env: {}, cwd, role: 'restore' }).endpoint, `unix://${sockOf(cwd, 'restore')}`);
  // a bare --socket name is the dev socket of that name, with the same checks and the URL hint
  const named = resolvePilotEnv({ env: {}, cwd, role: 'operator', socket: 'restore' });
  assert.equal(named.endpoint, `unix://${sockOf(cwd, 'restore')}`);
  assert.equal(named.nexusUrl, 'https://localhost:18553');
  // so is a path to that very socket (absolute or relative), not a path elsewhere
  for (const socket of [sockOf(cwd, 'restore'), './.spike/sockets/restore.sock']) {
    const byPath = resolvePilotEnv({ env: {}, cwd, role: 'operator', socket });
    assert.equal(byPath.endpoint, `unix://${sockOf(cwd, 'restore')}`, socket);
    assert.deepEqual(byPath.endpointSource, { kind: 'dev', path: sockOf(cwd, 'restore') }, socket);
    assert.equal(byPath.nexusUrl, 'https://localhost:18553', socket);
  }
  // SPIKE_DEV_DIR (real environment) points elsewhere
  const other = tmp();
  const viaEnv = resolvePilotEnv({ env: { SPIKE_DEV_DIR: path.join(cwd, '.spike') }, cwd: other, role: 'operator' });
  assert.equal(viaEnv.endpoint, `unix://${sockOf(cwd, 'pilot')}`);
  assert.equal(viaEnv.nexusUrl, 'https://localhost:18553');
});

test('precedence: --socket > SPIFFE_ENDPOINT_SOCKET > dev hint > default; SPIKE_NEXUS_API_URL > dev hint > default', async () => {
  const cwd = await devFolder();
  const rows: Array<[string, Parameters<typeof resolvePilotEnv>[0], string, string, string, string]> = [
    // name, input, endpoint, endpoint source, url, url source
    ['env URL wins', { env: { SPIKE_NEXUS_API_URL: 'https://n:1' }, cwd, role: 'operator' }, `unix://${sockOf(cwd, 'pilot')}`, `dev stack hint at ${sockOf(cwd, 'pilot')}`, 'https://n:1', 'environment (SPIKE_NEXUS_API_URL)'],
    ['env socket wins; then the dev URL is not used', { env: { SPIFFE_ENDPOINT_SOCKET: 'unix:///spire.sock' }, cwd, role: 'recover' }, 'unix:///spire.sock', 'environment (SPIFFE_ENDPOINT_SOCKET)', DEFAULT_NEXUS_URL, 'default'],
    ['flag name beats env', { env: { SPIFFE_ENDPOINT_SOCKET: 'unix:///spire.sock' }, cwd, role: 'operator', socket: 'restore' }, `unix://${sockOf(cwd, 'restore')}`, `dev stack hint at ${sockOf(cwd, 'restore')}`, 'https://localhost:18553', `dev stack hint at ${path.join(cwd, '.spike', 'env')}`],
    ['flag path', { env: {}, cwd, role: 'operator', socket: './x/y.sock' }, `unix://${path.join(cwd, 'x/y.sock')}`, 'flag --socket', DEFAULT_NEXUS_URL, 'default'],
    ['flag address', { env: {}, cwd, role: 'operator', socket: 'unix:///z.sock' }, 'unix:///z.sock', 'flag --socket', DEFAULT_NEXUS_URL, 'default'],
    ['absent name', { env: {}, cwd, role: 'operator', socket: 'nope' }, `unix://${sockOf(cwd, 'nope')}`, 'flag --socket', DEFAULT_NEXUS_URL, 'default'],
    ['nothing here', { env: {}, cwd: tmp(), role: 'operator' }, DEFAULT_WORKLOAD_ENDPOINT, 'default', DEFAULT_NEXUS_URL, 'default'],
  ];
  for (const [name, input, ep, epSrc, url, urlSrc] of rows) {
    const r = resolvePilotEnv(input);
    assert.equal(r.endpoint, ep, name);
    assert.equal(describeSource(r.endpointSource), epSrc, name);
    assert.equal(r.nexusUrl, url, name);
    assert.equal(describeSource(r.nexusUrlSource), urlSrc, name);
    assert.deepEqual(r.warnings, [], name);
  }
  assert.throws(() => resolvePilotEnv({ env: {}, cwd, role: 'operator', socket: '..' }), /Invalid --socket/);
});

test('the dev socket is refused unless it is a socket of yours in a 0700 folder of yours, in a folder of yours (reject table)', async () => {
  const cases: Array<[string, (cwd: string) => void | Promise<void>, RegExp]> = [
    ['.spike writable by others', (c) => fs.chmodSync(path.join(c, '.spike'), 0o777), /\.spike is writable by group or others/],
    ['.spike is a symlink', async (c) => {
      const real = await devFolder();
      fs.rmSync(path.join(c, '.spike'), { recursive: true });
      fs.symlinkSync(path.join(real, '.spike'), path.join(c, '.spike'));
    }, /\.spike is a symbolic link/],
    ['sockets/ is 0755', (c) => fs.chmodSync(path.join(c, '.spike', 'sockets'), 0o755), /sockets is not private to you/],
    ['sockets/ is a symlink', async (c) => {
      const real = await devFolder();
      fs.rmSync(path.join(c, '.spike', 'sockets'), { recursive: true });
      fs.symlinkSync(path.join(real, '.spike', 'sockets'), path.join(c, '.spike', 'sockets'));
    }, /sockets is a symbolic link/],
    ['pilot.sock is a symlink to a live socket', async (c) => {
      const real = await devFolder();
      fs.rmSync(sockOf(c, 'pilot'));
      fs.symlinkSync(sockOf(real, 'pilot'), sockOf(c, 'pilot'));
    }, /pilot\.sock is a symbolic link/],
    ['pilot.sock is a regular file', (c) => {
      fs.rmSync(sockOf(c, 'pilot'));
      fs.writeFileSync(sockOf(c, 'pilot'), '');
    }, /pilot\.sock is not a socket/],
  ];
  if (isRoot) {
    cases.push(
      ['pilot.sock owned by another user', (c) => fs.lchownSync(sockOf(c, 'pilot'), NOBODY, NOBODY), /pilot\.sock is owned by another user/],
      ['sockets/ owned by another user', (c) => fs.chownSync(path.join(c, '.spike', 'sockets'), NOBODY, NOBODY), /sockets is owned by another user/],
      ['.spike owned by another user', (c) => fs.chownSync(path.join(c, '.spike'), NOBODY, NOBODY), /\.spike is owned by another user/],
    );
  }
  for (const [name, spoil, re] of cases) {
    const cwd = await devFolder();
    await spoil(cwd);
    const r = resolvePilotEnv({ env: {}, cwd, role: 'operator' });
    assert.equal(r.endpoint, DEFAULT_WORKLOAD_ENDPOINT, name);
    assert.equal(r.nexusUrl, DEFAULT_NEXUS_URL, `${name}: the env file is not read without the dev socket`);
    assert.equal(r.env['SPIKE_NEXUS_API_URL'], undefined, name);
    assert.equal(r.warnings.length, 1, name);
    assert.match(r.warnings[0]!, /^Warning: not using the dev stack socket .*pilot\.sock: .*\.$/, name);
    assert.match(r.warnings[0]!, re, name);
    // asked for by name, a refused dev socket is an error, not a silent fallback
    assert.throws(() => resolvePilotEnv({ env: {}, cwd, role: 'operator', socket: 'pilot' }), (e: unknown) => (e as { code?: string }).code === 'pilot_dev_socket_refused' && re.test((e as Error).message), name);
  }
});

test('nothing but a loopback SPIKE_NEXUS_API_URL is taken from .spike/env (reject table)', async () => {
  const hostile =
    'SPIFFE_ENDPOINT_SOCKET=tcp://203.0.113.7:8081\nSPIKE_TRUST_ROOT_NEXUS=attacker.example\nSPIKE_TRUST_ROOT_PILOT=attacker.example\n' +
    'SPIKE_PILOT_RECOVERY_DIR=./loot\nSPIKE_SPIFFE_SOURCE_TIMEOUT=1h\nSPIKE_SYSTEM_LOG_LEVEL=DEBUG\n';
  const rows: Array<[string, string, string, RegExp[]]> = [
    ['other variables are ignored, the URL kept', `${hostile}SPIKE_NEXUS_API_URL=https://127.0.0.1:18553\n`, 'https://127.0.0.1:18553',
      [/^Warning: ignoring SPIFFE_ENDPOINT_SOCKET, SPIKE_TRUST_ROOT_NEXUS, SPIKE_TRUST_ROOT_PILOT, SPIKE_PILOT_RECOVERY_DIR, SPIKE_SPIFFE_SOURCE_TIMEOUT, SPIKE_SYSTEM_LOG_LEVEL in .*\/\.spike\/env \(only a loopback SPIKE_NEXUS_API_URL is read from it\)\.$/]],
    ['a remote Nexus URL is ignored', 'SPIKE_NEXUS_API_URL=https://nexus.attacker.example:443\n', DEFAULT_NEXUS_URL, [/^Warning: ignoring SPIKE_NEXUS_API_URL in .*env \(the dev stack hint must be https:\/\/127\.0\.0\.1, \[::1\] or localhost with a port\)\.$/]],
    ['a plaintext URL is ignored', 'SPIKE_NEXUS_API_URL=http://127.0.0.1:18553\n', DEFAULT_NEXUS_URL, [/ignoring SPIKE_NEXUS_API_URL/]],
    ['a URL list is ignored', 'SPIKE_NEXUS_API_URL=https://127.0.0.1:1,https://192.0.2.9:1\n', DEFAULT_NEXUS_URL, [/ignoring SPIKE_NEXUS_API_URL/]],
  ];
  for (const [name, text, url, warns] of rows) {
    const cwd = await devFolder(text);
    const r = resolvePilotEnv({ env: { HOME: '/home/u' }, cwd, role: 'operator' });
    assert.equal(r.endpoint, `unix://${sockOf(cwd, 'pilot')}`, name);
    assert.equal(r.nexusUrl, url, name);
    for (const k of ['SPIFFE_ENDPOINT_SOCKET', 'SPIKE_TRUST_ROOT_NEXUS', 'SPIKE_TRUST_ROOT_PILOT', 'SPIKE_PILOT_RECOVERY_DIR', 'SPIKE_SPIFFE_SOURCE_TIMEOUT', 'SPIKE_SYSTEM_LOG_LEVEL']) {
      assert.equal(r.env[k], undefined, `${name}: ${k}`);
    }
    assert.equal(r.warnings.length, warns.length, `${name}: ${JSON.stringify(r.warnings)}`);
    warns.forEach((re, i) => assert.match(r.warnings[i]!, re, name));
    assert.ok(!r.warnings.join('').includes('attacker'), `${name}: values are never echoed`);
  }
  // without a dev socket, a tcp:// endpoint in the file is never used (the file is not even read)
  const noSock = tmp();
  fs.mkdirSync(path.join(noSock, '.spike'), { mode: 0o755 });
  fs.writeFileSync(path.join(noSock, '.spike', 'env'), hostile, { mode: 0o644 });
  const r = resolvePilotEnv({ env: {}, cwd: noSock, role: 'restore' });
  assert.equal(r.endpoint, DEFAULT_WORKLOAD_ENDPOINT);
  assert.deepEqual(r.warnings, []);
});

test('.spike/env is read only from a regular file of yours that others cannot write (reject table)', async () => {
  const cases: Array<[string, (file: string) => void, RegExp]> = [
    ['symlink', (f) => {
      const real = path.join(path.dirname(f), 'real-env');
      fs.renameSync(f, real);
      fs.symlinkSync(real, f);
    }, /is a symbolic link/],
    ['group-writable', (f) => fs.chmodSync(f, 0o664), /is writable by group or others/],
    ['a FIFO (must not hang)', (f) => {
      fs.rmSync(f);
      execFileSync('mkfifo', [f]);
    }, /is not a regular file/],
    ['a directory', (f) => {
      fs.rmSync(f);
      fs.mkdirSync(f);
    }, /is not a regular file/],
  ];
  if (isRoot) cases.push(['owned by another user', (f) => fs.chownSync(f, NOBODY, NOBODY), /is owned by another user/]);
  for (const [name, spoil, re] of cases) {
    const cwd = await devFolder();
    spoil(path.join(cwd, '.spike', 'env'));
    const r = resolvePilotEnv({ env: {}, cwd, role: 'operator' });
    assert.equal(r.endpoint, `unix://${sockOf(cwd, 'pilot')}`, name);
    assert.equal(r.nexusUrl, DEFAULT_NEXUS_URL, name);
    assert.equal(r.warnings.length, 1, name);
    assert.match(r.warnings[0]!, /^Warning: not using .*\/\.spike\/env: it /, name);
    assert.match(r.warnings[0]!, re, name);
  }
});

test('spike env shows a Nexus URL without the user or password it may carry', async () => {
  const { withoutCredentials } = await import('./envcmd.js');
  assert.equal(withoutCredentials('https://user:p4ssw0rd@nexus.example:8553'), 'https://***@nexus.example:8553/');
  assert.equal(withoutCredentials('https://a:8553,https://u:pw@b:8553'), 'https://a:8553,https://***@b:8553/');
  assert.equal(withoutCredentials('https://nexus.example:8553'), 'https://nexus.example:8553');
  assert.ok(!withoutCredentials('not a url//u:p4ssw0rd@x').includes('p4ssw0rd'));
  assert.ok(!withoutCredentials('https://user:pa/ss@host:8553').includes('pa/ss'), 'a slash in the password');
  assert.equal(withoutCredentials('https://nexus:8553/?token=s3cret'), 'https://nexus:8553/?***');
});
