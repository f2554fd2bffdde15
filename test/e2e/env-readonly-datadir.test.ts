/**
 * ENV-04: Nexus on a read-only data directory (a real read-only tmpfs mount) exits at start
 * with a one-line reason and never listens — never "ready" without durable storage. Two
 * forms: the mount holds no `data` folder yet (Nexus cannot create it), and the folder exists
 * but the file system is read-only (the database cannot be created). Needs root (mount);
 * skipped otherwise.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Stack } from '../helpers/stack.js';

const canMount = process.getuid?.() === 0 && spawnSync('mount', ['--version'], { stdio: 'ignore' }).status === 0;
let stack: Stack | undefined;
let mnt: string;

before(async () => {
  if (!canMount) return;
  stack = await Stack.start({ bootstrap: false });
  await stack.killNexus();
  mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-ro-'));
});
after(async () => {
  if (mnt !== undefined) {
    spawnSync('umount', [mnt], { stdio: 'ignore' });
    fs.rmSync(mnt, { recursive: true, force: true });
  }
  await stack?.stop();
});

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
}

test('ENV-04: a read-only data directory makes Nexus exit non-zero at start with one reason line; nothing listens', { skip: canMount ? false : 'cannot mount a tmpfs here (needs root)', timeout: 120_000 }, async () => {
  const s = stack!;
  for (const withDataFolder of [false, true]) {
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', mnt]).status, 0);
    if (withDataFolder) fs.mkdirSync(path.join(mnt, 'data'), { mode: 0o700 });
    assert.equal(spawnSync('mount', ['-o', 'remount,ro', mnt]).status, 0);
    try {
      const env = { ...s.nexusEnv(), SPIKE_NEXUS_DATA_DIR: mnt };
      const t0 = Date.now();
      const r = await s.run('spike-nexus', [], env);
      const ms = Date.now() - t0;
      assert.notEqual(r.code, 0, `exit code (data folder: ${withDataFolder})`);
      assert.ok(ms < 30_000, `exited after ${ms} ms`);
      const reasons = r.stderr.split('\n').filter((l) => l.startsWith('spike-nexus:'));
      assert.equal(reasons.length, 1, r.stderr.slice(-500));
      assert.ok(!r.stderr.includes('    at '), 'no stack trace');
      assert.equal(await refused(Number(new URL(s.nexusUrl).port)), true, 'nothing listens');
      assert.deepEqual(fs.readdirSync(mnt), withDataFolder ? ['data'] : []);
    } finally {
      assert.equal(spawnSync('umount', [mnt]).status, 0);
    }
  }
});
