/**
 * `spike-nexus backup` / `verify-backup` as a process (docs/backup.md): the settings it
 * reads, one line on stderr and exit 1 on every refusal, the destination and size on
 * stdout on success. The online-copy behaviour itself is tested in
 * src/store/sqlite/backup.test.ts and in the restore drill.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binPath } from '../helpers/bin.js';
import { tempDir } from '../helpers/temp.js';
import { openStore } from '../../src/store/index.js';

function nexus(args: string[], env: Record<string, string>): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [binPath('spike-nexus'), ...args], {
    env: { PATH: process.env['PATH'] ?? '', HOME: tempDir('spike-cli-home-'), ...env }, encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function refusedWith(r: { code: number | null; stdout: string; stderr: string }, re: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, re);
}

test('spike-nexus backup: success prints the destination and size; refusals are one line, exit 1', async () => {
  const home = tempDir('spike-cli-data-');
  const store = await openStore({ kind: 'sqlite', file: path.join(home, 'data', 'spike.db') });
  await store.close();
  const env = { SPIKE_NEXUS_DATA_DIR: home };
  const out = tempDir('spike-cli-out-');
  const dest = path.join(out, 'b.db');
  const ok = nexus(['backup', dest], env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`backup written to ${dest} \\(\\d+ bytes`));
  assert.equal(fs.statSync(dest).mode & 0o777, 0o600);
  refusedWith(nexus(['backup', dest], env), /^spike-nexus backup: destination .* already exists \(use --force/);
  assert.equal(nexus(['backup', '--force', dest], env).code, 0);
  refusedWith(nexus(['backup', path.join(home, 'data', 'x.db')], env), /inside the live data directory/);
  refusedWith(nexus(['backup'], env), /expected exactly one destination file/);
  refusedWith(nexus(['backup', '--bogus', dest], env), /unknown option --bogus/);
  refusedWith(nexus(['backup', dest], { SPIKE_NEXUS_DATA_DIR: tempDir('spike-cli-empty-') }), /no SQLite store at .*spike\.db/);
  refusedWith(nexus(['backup', dest], { SPIKE_NEXUS_DATA_DIR: '/etc/spike' }), /SPIKE_NEXUS_DATA_DIR/);
  refusedWith(nexus(['backup', dest], { ...env, SPIKE_NEXUS_BACKEND_STORE: 'postgres' }), /pg_dump/);
  refusedWith(nexus(['backup', dest], { ...env, SPIKE_NEXUS_BACKEND_STORE: 'memory' }), /nothing to back up/);
  refusedWith(nexus(['backup', dest], { ...env, SPIKE_NEXUS_BACKEND_STORE: 'lite' }), /nothing to back up/);
  const v = nexus(['verify-backup', dest], {});
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /is intact \(\d+ bytes; 0 secrets/);
  fs.writeFileSync(path.join(out, 'junk'), 'not a database');
  refusedWith(nexus(['verify-backup', path.join(out, 'junk')], {}), /^spike-nexus verify-backup: /);
  assert.match(nexus(['backup', '--help'], {}).stdout, /usage: spike-nexus backup \[--force\] <dest-file>/);
});
