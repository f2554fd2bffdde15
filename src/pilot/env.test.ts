/**
 * Dev-stack defaults: after `npm start`, `spike` in the same folder finds `./.spike/sockets/*.sock`
 * and `./.spike/env` with no setup; explicit settings win; an untrusted folder is ignored.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { devDir, parseEnvFile, resolvePilotEnv } from './env.js';

const servers: net.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function listenSocket(p: string): Promise<void> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(p, r));
  servers.push(s);
}

async function devFolder(): Promise<string> {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-env-'));
  const dir = path.join(cwd, '.spike');
  fs.mkdirSync(path.join(dir, 'sockets'), { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  for (const n of ['pilot', 'recover', 'restore']) await listenSocket(path.join(dir, 'sockets', `${n}.sock`));
  fs.writeFileSync(path.join(dir, 'env'), '# written by npm start\nSPIKE_NEXUS_API_URL=https://127.0.0.1:18553\nexport SPIKE_TRUST_ROOT_NEXUS="spike.ist"\nPATH=/evil\nNOT_SPIKE=1\n', { mode: 0o600 });
  return cwd;
}

test('parseEnvFile: NAME=value lines, comments, quotes, export; only SPIKE_/SPIFFE_ names', () => {
  const e = parseEnvFile('# c\n\nSPIKE_A=1\nexport SPIKE_B="two words"\nSPIFFE_ENDPOINT_SOCKET=unix:///x\nPATH=/evil\nLD_PRELOAD=x\nbad line\n');
  assert.deepEqual({ ...e }, { SPIKE_A: '1', SPIKE_B: 'two words', SPIFFE_ENDPOINT_SOCKET: 'unix:///x' });
});

test('dev folder: ./.spike or $SPIKE_DEV_DIR', () => {
  assert.equal(devDir({}, '/w'), '/w/.spike');
  assert.equal(devDir({ SPIKE_DEV_DIR: 'state' }, '/w'), '/w/state');
  assert.equal(devDir({ SPIKE_DEV_DIR: '/abs' }, '/w'), '/abs');
});

test('after npm start: role sockets and the env file are used when nothing is set', async () => {
  const cwd = await devFolder();
  const sock = (n: string): string => `unix://${path.join(cwd, '.spike', 'sockets', `${n}.sock`)}`;
  const op = resolvePilotEnv({ env: {}, cwd, role: 'operator' });
  assert.equal(op.endpoint, sock('pilot'));
  assert.equal(op.env['SPIKE_NEXUS_API_URL'], 'https://127.0.0.1:18553');
  assert.equal(op.env['PATH'], undefined, 'only SPIKE_/SPIFFE_ names come from the file');
  assert.deepEqual(op.warnings, []);
  assert.equal(resolvePilotEnv({ env: {}, cwd, role: 'recover' }).endpoint, sock('recover'));
  assert.equal(resolvePilotEnv({ env: {}, cwd, role: 'restore' }).endpoint, sock('restore'));
  // explicit settings win
  assert.equal(resolvePilotEnv({ env: { SPIKE_NEXUS_API_URL: 'https://n:1' }, cwd, role: 'operator' }).env['SPIKE_NEXUS_API_URL'], 'https://n:1');
  assert.equal(resolvePilotEnv({ env: { SPIFFE_ENDPOINT_SOCKET: 'unix:///spire.sock' }, cwd, role: 'recover' }).endpoint, 'unix:///spire.sock');
  assert.equal(resolvePilotEnv({ env: { SPIFFE_ENDPOINT_SOCKET: 'unix:///spire.sock' }, cwd, role: 'operator', socket: 'restore' }).endpoint, sock('restore'));
  assert.equal(resolvePilotEnv({ env: {}, cwd, role: 'operator', socket: './x/y.sock' }).endpoint, `unix://${path.join(cwd, 'x/y.sock')}`);
  assert.equal(resolvePilotEnv({ env: {}, cwd, role: 'operator', socket: 'unix:///z.sock' }).endpoint, 'unix:///z.sock');
  assert.throws(() => resolvePilotEnv({ env: {}, cwd, role: 'operator', socket: '..' }), /Invalid --socket/);
  fs.rmSync(cwd, { recursive: true, force: true });
});

test('an untrusted dev folder (writable by others) is ignored with a one-line warning', async () => {
  const cwd = await devFolder();
  fs.chmodSync(path.join(cwd, '.spike'), 0o777);
  const r = resolvePilotEnv({ env: {}, cwd, role: 'operator' });
  assert.equal(r.endpoint, undefined);
  assert.equal(r.env['SPIKE_NEXUS_API_URL'], undefined);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /^Warning: ignoring .* \(writable by group or others\)\.$/);
  fs.rmSync(cwd, { recursive: true, force: true });
});

test('no dev folder: nothing is invented', () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'pilot-env-'));
  const r = resolvePilotEnv({ env: {}, cwd, role: 'operator' });
  assert.equal(r.endpoint, undefined);
  assert.deepEqual(r.warnings, []);
  fs.rmSync(cwd, { recursive: true, force: true });
});
