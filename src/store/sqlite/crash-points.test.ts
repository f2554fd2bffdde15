/**
 * FI-02 (store level, short form): a process killed with SIGKILL at injected points inside a
 * secret write — after `BEGIN IMMEDIATE`, after the metadata row, before `COMMIT`, after
 * `COMMIT` but before the write is acknowledged — on a real SQLite file
 * (test/helpers/store-crash.child.ts; the store code is unchanged, the child wraps
 * better-sqlite3's `Statement#run`). The crashing transaction carries 3 group-committed
 * writes. After each kill the store is reopened and checked for FI-01's invariants: every
 * acknowledged (path, version, value) reads back; the unacknowledged writes are all absent
 * (killed before COMMIT: the transaction never happened) or all present (killed after it:
 * committed, just not acknowledged); each path's metadata names its newest version and its
 * versions are contiguous; the rollback anchor (armed in the child as Nexus arms it) moved
 * exactly with what is durable — the last acknowledged batch's counter, one more when the
 * killed batch committed — so a restart after the crash is never taken for a rollback;
 * `PRAGMA integrity_check` is ok. The runs share one file, so each
 * starts from the previous crash. Runs per point: FI02_RUNS (default 1; the catalogue's full
 * form is 5).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { RootKey } from '../../crypto/index.js';
import { SqliteStore, anchorCounter } from '../index.js';
import { CRASH_PATHS, CRASH_POINTS, type CrashPoint } from '../../../test/helpers/store-crash.child.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../test/helpers/store-crash.child.js');
const RUNS = Math.max(1, Number(process.env['FI02_RUNS'] ?? 1));

interface Ack { path: string; version: number; value: string }

function runChild(file: string, point: CrashPoint, tag: string, rootHex: string): Promise<{ signal: string | null; acks: Ack[]; anchor: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, file, point, tag], { env: { ...process.env, SPIKE_TEST_ROOT_HEX: rootHex }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { err += c.toString('utf8'); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      clearTimeout(timer);
      const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { ack: Ack; anchor: number });
      resolve({ signal, acks: lines.map((l) => l.ack), anchor: lines.at(-1)?.anchor ?? -1, out, err });
    });
  });
}

test('FI-02: SIGKILL after BEGIN, after the metadata write, before COMMIT and after COMMIT: acked writes survive, the unacked batch is all-or-nothing (absent before COMMIT, present after), metadata consistent, integrity ok', { timeout: 180_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-fi02-'));
  const file = path.join(dir, 'spike.db');
  const root = RootKey.generate();
  const rootHex = Buffer.from(root.bytes()).toString('hex');
  /** Every write known to be durable: acknowledged, or found committed after a crash. */
  const durable: Ack[] = [];
  const newest = new Map<string, Ack>();
  const record = (a: Ack): void => {
    durable.push(a);
    newest.set(a.path, a);
  };
  try {
    for (let run = 0; run < RUNS; run++) {
      for (const point of CRASH_POINTS) {
        const tag = `r${run}-${point}`;
        const r = await runChild(file, point, tag, rootHex);
        assert.equal(r.signal, 'SIGKILL', `${tag}: the crash point was reached (stdout ${r.out.slice(-200)}, stderr ${r.err.slice(-400)})`);
        assert.ok(!r.out.includes('survived'));
        const crashAcks = r.acks.filter((a) => a.value.endsWith('-crash'));
        assert.deepEqual(crashAcks, [], `${tag}: no write of the killed transaction was acknowledged`);
        assert.equal(r.acks.length, 6, `${tag}: the 6 writes before the crash point were acknowledged`);
        for (const a of r.acks) record(a);

        const store = new SqliteStore({ file });
        try {
          await store.unlock(RootKey.fromBytes(Buffer.from(rootHex, 'hex')));
          for (const a of durable) {
            const got = await store.getSecret(a.path, a.version);
            // Pruning (10 versions kept) may drop old ones; a kept version must be intact.
            if (got !== null) assert.deepEqual({ version: got.version, v: got.values['v'] }, { version: a.version, v: a.value }, `${tag}: ${a.path}@${a.version}`);
          }
          const present: boolean[] = [];
          for (const p of CRASH_PATHS) {
            const last = newest.get(p)!;
            const cur = await store.getSecret(p);
            assert.ok(cur, `${tag}: ${p} readable`);
            const committed = cur.values['v'] === `${tag}-crash`;
            present.push(committed);
            assert.equal(cur.version, committed ? last.version + 1 : last.version, `${tag}: ${p} newest version`);
            if (!committed) assert.equal(cur.values['v'], last.value, `${tag}: ${p} still holds its last acked value`);
            const meta = await store.getSecretMetadata(p);
            assert.ok(meta);
            assert.equal(meta.metadata.currentVersion, cur.version, `${tag}: ${p} metadata names the newest version`);
            const vs = meta.versions.map((v) => v.version).sort((x, y) => x - y);
            assert.deepEqual(vs, Array.from({ length: vs.length }, (_, i) => vs[0]! + i), `${tag}: ${p} versions contiguous`);
            assert.equal(vs[vs.length - 1], cur.version);
            if (committed) record({ path: p, version: cur.version, value: `${tag}-crash` });
          }
          // All or nothing, and which one is fixed by where the process died.
          assert.deepEqual(present, CRASH_PATHS.map(() => point === 'after-commit'), `${tag}: the killed batch is ${point === 'after-commit' ? 'committed' : 'absent'}`);
          const anchor = Number(anchorCounter(await store.anchor!.read()) ?? -1n);
          assert.ok(r.anchor > 0, `${tag}: the anchor was armed`);
          assert.equal(anchor, r.anchor + (point === 'after-commit' ? 1 : 0), `${tag}: the rollback anchor moved with the durable writes`);
        } finally {
          await store.close();
        }
        const check = new Database(file, { readonly: true });
        try {
          assert.equal(check.pragma('integrity_check', { simple: true }), 'ok', `${tag}: integrity_check`);
        } finally {
          check.close();
        }
      }
    }
  } finally {
    root.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
