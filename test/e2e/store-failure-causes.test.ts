/**
 * Store failures are named, on a real file system: a 1 MiB tmpfs filled by real writes
 * (SQLITE_FULL / ENOSPC), then remounted read-only (EROFS). Through the real HTTP routes a
 * write answers 503 `state_not_ready` with `message` "store unavailable: disk full" /
 * (read-only: opening the store names it); the log names the cause in a bounded number of lines (not one per
 * failed batch); `storeFailure(store)` reports it and clears once a write succeeds; the CLI
 * line fits the cause (no `spike operator restore`). Needs root (mount); skipped otherwise.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRouteHarness } from '../helpers/route-harness.js';
import { RootKey } from '../../src/crypto/index.js';
import { createLogger } from '../../src/lib/log.js';
import { describeError } from '../../src/pilot/errors.js';
import { storeFailureFromMessage } from '../../src/protocol/index.js';
import { NexusApiError } from '../../src/sdk/index.js';
import { SqliteStore, storeFailure } from '../../src/store/index.js';
import { secretRoutes } from '../../src/nexus/routes/secrets.js';

const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const S = '/v1/store/secrets';

function mount(dir: string, opts: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir], { stdio: 'ignore' }).status === 0;
}

const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-tmpfs-probe-'));
const canMount = mount(probe, 'size=64k');
if (canMount) spawnSync('umount', [probe]);
fs.rmdirSync(probe);

test('ENV-01 / STO-13 / FI-14 (short form): disk full (SQLITE_FULL) and read-only storage are named in the answer, the log, storeFailure() and the CLI; acked writes survive, refused ones are absent, integrity ok, writes resume without a restart', { skip: canMount ? false : 'cannot mount a tmpfs here (needs root)', timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-full-'));
  assert.ok(mount(dir, 'size=1m'));
  const out: string[] = [];
  const logger = createLogger({ component: 'nexus', level: 'warn', destination: new Writable({ write(c, _e, cb) { out.push(String(c)); cb(); } }) });
  const store = new SqliteStore({ file: path.join(dir, 'spike.db'), logger });
  await store.unlock(RootKey.generate());
  const h = await startRouteHarness({ modules: [secretRoutes], store });
  try {
    // Fill the disk with real writes until the store refuses.
    const big = 'x'.repeat(8 * 1024);
    let full: { status: number; json: unknown } | undefined;
    let failures = 0;
    const acked: string[] = [];
    const refused: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const paths = Array.from({ length: 8 }, (_, j) => `fill/p${i}-${j}`);
      const batch = await Promise.all(paths.map((p) => h.post(S, { path: p, values: { v: big } }, PILOT)));
      batch.forEach((r, j) => {
        if (r.status === 200) acked.push(paths[j]!);
        else {
          assert.equal(r.status, 503, 'a write on a full disk is a 503, never a 2xx or another status');
          refused.push(paths[j]!);
          failures++;
          full ??= r;
        }
      });
      if (failures >= 40) break;
    }
    assert.ok(full, 'the 1 MiB file system never filled up');
    assert.equal(full.status, 503);
    assert.deepEqual(full.json, { err: 'state_not_ready', message: 'store unavailable: disk full' });
    assert.equal(storeFailure(store)?.cause, 'disk_full');
    assert.ok((storeFailure(store)?.failures ?? 0) >= 1);
    const lines = out.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const named = lines.filter((l) => l['event'] === 'store_failure');
    assert.equal(named.length, 1, `one line for ${failures} failed writes, got ${JSON.stringify(lines)}`);
    assert.equal(named[0]!['cause'], 'disk_full');
    assert.match(String(named[0]!['msg']), /^store unavailable: disk full: free space/);
    assert.ok(!lines.some((l) => l['msg'] === 'store write batch rolled back' || l['msg'] === 'store unavailable'), 'no per-batch/per-request lines at the default level');
    // ENV-01 / FI-14: nothing acknowledged was lost, nothing refused was half-written, reads
    // keep working on the full disk, and the database is intact.
    for (const p of acked) assert.equal((await h.post(`${S}?action=get`, { path: p }, PILOT)).status, 200, `acked ${p} readable`);
    for (const p of refused) assert.equal((await h.post(`${S}?action=get`, { path: p }, PILOT)).status, 404, `refused ${p} absent`);
    const check = new Database(path.join(dir, 'spike.db'), { readonly: true });
    try {
      assert.equal(check.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      check.close();
    }
    // The CLI line fits: free space, not restore.
    const cli = describeError(new NexusApiError('state_not_ready', { status: 503, wireErr: 'state_not_ready', storeFailure: storeFailureFromMessage('store unavailable: disk full')! }), 'secret').line;
    assert.match(cli, /Free space/);
    assert.ok(!cli.includes('operator restore'));

    // Grow the file system (the operator frees space): the next write works and the cause
    // clears, with one recovery line.
    assert.equal(spawnSync('mount', ['-o', 'remount,size=4m', dir]).status, 0);
    const ok = await h.post(S, { path: 'after/full', values: { v: 'y' } }, PILOT);
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(storeFailure(store), null);
    assert.ok(out.join('').includes('"event":"store_recovered"'));

    // Read-only: Linux refuses to remount read-only under files open for writing, so close
    // the store, remount, and open it again: the open names the cause.
    await h.close();
    await store.close();
    assert.equal(spawnSync('mount', ['-o', 'remount,ro', dir]).status, 0);
    assert.throws(() => new SqliteStore({ file: path.join(dir, 'spike.db'), logger }), (e: unknown) => {
      const err = e as { code?: string; failure?: string };
      assert.equal(err.code, 'store_unavailable');
      assert.equal(err.failure, 'read_only');
      return true;
    });
    const roCli = describeError(new NexusApiError('state_not_ready', { status: 503, storeFailure: 'read_only' }), 'secret').line;
    assert.match(roCli, /mounted read-write/);
  } finally {
    await h.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    spawnSync('umount', ['-l', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
