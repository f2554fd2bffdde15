/**
 * The dev stack keeps its own development shards current (issue 16 §1): after `spike
 * operator refresh-shares` it exports the shards of the new epoch again, so a restarted
 * `npm start` (Keepers empty) still restores the same key and the data reads back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli, devFolder, startDev, waitFor } from '../helpers/dev.js';

test('npm start: refresh-shares → dev shards re-exported; a restarted dev stack restores the key from them', async (t) => {
  const { dir, spikeDir, env } = await devFolder(t, 'spike-dev-refresh-');
  const shard1 = (): string => fs.readFileSync(path.join(spikeDir, 'recovery', 'spike.recovery.1.txt'), 'utf8');

  const first = startDev(env);
  t.after(() => { first.proc.kill('SIGKILL'); });
  await waitFor(first, 'SPIKE ready', 180_000);
  const before = shard1();
  const put = await cli(dir, ['secret', 'put', 'secrets/refresh', 'k=v']);
  assert.equal(put.code, 0, put.stderr);
  const r = await cli(dir, ['operator', 'refresh-shares']);
  assert.equal(r.code, 0, r.stderr);
  await waitFor(first, 'development shards exported again', 60_000);
  assert.notEqual(shard1(), before, 'the shard files now hold the epoch-2 shares');
  first.proc.kill('SIGINT');
  assert.equal(await first.exited, 0);

  const second = startDev(env);
  t.after(() => { second.proc.kill('SIGKILL'); });
  await waitFor(second, 'SPIKE ready', 180_000);
  const get = await cli(dir, ['secret', 'get', 'secrets/refresh', '--json']);
  assert.equal(get.code, 0, get.stderr);
  assert.deepEqual(JSON.parse(get.stdout), { k: 'v' });
  second.proc.kill('SIGINT');
  assert.equal(await second.exited, 0);
});
