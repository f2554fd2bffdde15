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
import { sleep } from '../helpers/mtls-harness.js';
import { RootKey } from '../../src/crypto/index.js';
import { createLogger } from '../../src/lib/log.js';
import { describeError } from '../../src/pilot/errors.js';
import { storeFailureFromMessage } from '../../src/protocol/index.js';
import { NexusApiError } from '../../src/sdk/index.js';
import { SqliteStore, storeFailure } from '../../src/store/index.js';
import { secretRoutes } from '../../src/nexus/routes/secrets.js';
import { checkpointErrorKind } from '../../src/store/sqlite/checkpointer.js';

const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const S = '/v1/store/secrets';

function mount(dir: string, opts: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir], { stdio: 'ignore' }).status === 0;
}

const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-tmpfs-probe-'));
const canMount = mount(probe, 'size=64k');
if (canMount) spawnSync('umount', [probe]);
fs.rmdirSync(probe);

/**
 * The disk-full and read-only drill. `frames`: the store's checkpoint threshold. At the default
 * (1,000 log pages, 4 MB) the 1 MiB disk fills before any checkpoint runs; at 16 pages the
 * checkpoint thread keeps copying the log into the database file while the disk fills, so a
 * checkpoint meets the full disk too: it must wait and try again, never stop the store.
 */
async function diskFullDrill(frames?: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-full-'));
  assert.ok(mount(dir, 'size=1m'));
  const out: string[] = [];
  const logger = createLogger({ component: 'nexus', level: 'warn', destination: new Writable({ write(c, _e, cb) { out.push(String(c)); cb(); } }) });
  const store = new SqliteStore({ file: path.join(dir, 'spike.db'), logger, ...(frames !== undefined ? { checkpoints: { frames } } : {}) });
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
    // outcome: the batch was rolled back before its commit frame was whole: nothing written, safe to retry.
    assert.deepEqual(full.json, { err: 'state_not_ready', message: 'store unavailable: disk full', outcome: 'not_applied' });
    assert.equal(storeFailure(store)?.cause, 'disk_full');
    // On this full volume a checkpoint's refused write is waited out, a failed sync never is.
    assert.equal(checkpointErrorKind('SQLITE_FULL', dir), 'full');
    assert.equal(checkpointErrorKind('SQLITE_IOERR_WRITE', dir), 'full');
    for (const code of ['SQLITE_IOERR_FSYNC', 'SQLITE_IOERR', 'ENOSPC', 'EIO']) assert.equal(checkpointErrorKind(code, dir), 'fatal', code);
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
    if (frames !== undefined) {
      // A checkpoint met the full disk, waited, and runs again now that there is room: the
      // next writes take the log through a checkpoint that succeeds; nothing stopped the store.
      const before = store.stats().checkpoints!;
      assert.ok(before.full >= 1, `a checkpoint met the full disk: ${JSON.stringify(before)}`);
      const deadline = Date.now() + 30_000;
      for (let n = 0; store.stats().checkpoints!.checkpoints <= before.checkpoints; n++) {
        assert.ok(Date.now() < deadline, `no checkpoint once the disk had room: ${JSON.stringify(store.stats().checkpoints)}`);
        assert.equal((await h.post(S, { path: `after/ckpt${n % 4}`, values: { v: 'z'.repeat(4096) } }, PILOT)).status, 200);
        await sleep(50);
      }
      assert.equal(store.stats().checkpoints!.failures, 0, 'no checkpoint failed: a full disk is waited out');
      const warned = out.join('').trim().split('\n').filter((l) => l.includes('a database checkpoint found the disk full'));
      assert.equal(warned.length, 1, `one WARN line for ${before.full} full checkpoints`);
      assert.equal((await h.post(`${S}?action=get`, { path: acked[0]! }, PILOT)).status, 200);
    }

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
}

const needsRoot = { skip: canMount ? false : 'cannot mount a tmpfs here (needs root)', timeout: 120_000 };

test('ENV-01 / STO-13 / FI-14 (short form): disk full (SQLITE_FULL) and read-only storage are named in the answer, the log, storeFailure() and the CLI; acked writes survive, refused ones are absent, integrity ok, writes resume without a restart', needsRoot, async () => {
  await diskFullDrill();
});

test('FI-14 with checkpoints: a checkpoint that meets the full disk waits and tries again (one WARN line); reads go on, nothing stops the store, writes and checkpoints resume once there is room', needsRoot, async () => {
  await diskFullDrill(16);
});

test('FI-14 restart on a full disk: the store opens (the log rewritten in place and synced instead of copied, one WARN line), every acknowledged write reads back, writes resume once there is room', needsRoot, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-full-'));
  assert.ok(mount(dir, 'size=1m'));
  const file = path.join(dir, 'spike.db');
  const out: string[] = [];
  const logger = createLogger({ component: 'nexus', level: 'warn', destination: new Writable({ write(c, _e, cb) { out.push(String(c)); cb(); } }) });
  const root = RootKey.generate();
  let store: SqliteStore | undefined = new SqliteStore({ file, logger });
  try {
    await store.unlock(root);
    const acked: string[] = [];
    for (let i = 0; i < 2000; i++) {
      try {
        await store.putSecret(`fill/p${i}`, { v: 'x'.repeat(4096) });
        acked.push(`fill/p${i}`);
      } catch (e) {
        assert.equal((e as { code?: string }).code, 'store_unavailable');
        break;
      }
    }
    assert.ok(acked.length > 10, `the disk filled after ${acked.length} writes`);
    await store.close(); // its last-close checkpoint cannot grow the file either: the log stays
    store = undefined;
    assert.ok(fs.statSync(`${file}-wal`).size > 0, 'the log holds the writes at the restart');
    // The log is rewritten in place (same bytes, no new space) and synced: a sync alone would
    // leave off the disk any page a failed sync left clean in the cache.
    const old = new Date(Date.now() - 3_600_000);
    fs.utimesSync(`${file}-wal`, old, old);
    // The restart: before, the start-up checkpoint's SQLITE_FULL stopped the store from opening.
    store = new SqliteStore({ file, logger });
    assert.ok(fs.statSync(`${file}-wal`).mtimeMs > old.getTime() + 1_800_000, 'the log was written back in place on the full disk');
    await store.unlock(root);
    for (const p of acked) assert.equal((await store.getSecret(p))?.values['v']?.length, 4096, `acked ${p} reads back after the restart`);
    const warned = out.join('').trim().split('\n').filter((l) => l.includes('could not be copied into the database file at start'));
    assert.equal(warned.length, 1, out.join(''));
    assert.equal(spawnSync('mount', ['-o', 'remount,size=8m', dir]).status, 0);
    await store.putSecret('after/full', { v: 'y' });
    assert.equal((await store.getSecret('after/full'))?.values['v'], 'y');
  } finally {
    await store?.close().catch(() => undefined);
    root.destroy();
    spawnSync('umount', ['-l', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
