/**
 * Issue 4: `npm start` (bin/spike-dev.js) reaches `SPIKE ready` on a fresh state folder; after
 * Ctrl-C it starts again with empty Keepers, restores the SAME root key from the development
 * shards, and data written before the restart reads back. Ctrl-C stops every child.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli, devFolder, startDev, waitFor } from '../helpers/dev.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('npm start: SPIKE ready; Ctrl-C stops everything; a restart restores the same key from dev shards', async (t) => {
  const { dir, spikeDir, env } = await devFolder(t, 'spike-dev-');

  const first = startDev(env);
  t.after(() => { first.proc.kill('SIGKILL'); });
  await waitFor(first, 'SPIKE ready', 180_000);
  const files = fs.readdirSync(path.join(spikeDir, 'recovery')).sort();
  assert.deepEqual(files, ['spike.recovery.1.txt', 'spike.recovery.2.txt', 'spike.recovery.3.txt']);
  for (const f of files) assert.equal(fs.statSync(path.join(spikeDir, 'recovery', f)).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(spikeDir, 'recovery')).mode & 0o777, 0o700);

  // The CLI works from the folder with no setup (sockets and env found under ./.spike).
  const put = await cli(dir, ['secret', 'put', 'secrets/db/creds', 'username=admin', 'password=s3cret']);
  assert.equal(put.code, 0, put.stderr);

  const kids = childPids(first.proc.pid!);
  assert.ok(kids.length >= 5, `agent, 3 keepers, nexus are children (${kids.length})`);
  first.proc.kill('SIGINT');
  assert.equal(await first.exited, 0);
  for (const k of kids) assert.equal(alive(k), false, `child ${k} stopped`);

  const second = startDev(env);
  t.after(() => { second.proc.kill('SIGKILL'); });
  await waitFor(second, 'SPIKE ready', 180_000);
  assert.match(second.out(), /restoring the root key from development shards/);
  const get = await cli(dir, ['secret', 'get', 'secrets/db/creds', '--json']);
  assert.equal(get.code, 0, get.stderr);
  assert.deepEqual(JSON.parse(get.stdout), { password: 's3cret', username: 'admin' });
  second.proc.kill('SIGINT');
  assert.equal(await second.exited, 0);
});
