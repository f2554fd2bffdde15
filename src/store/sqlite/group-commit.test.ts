/**
 * What a rolled-back batch tells its writers (group-commit.ts): `outcome: "not_applied"` only
 * where nothing can have been written (a full disk refused the transaction's log frames, and
 * the rollback ran); an I/O error leaves the outcome unknown. Real SQLite file, the batch made
 * to fail in its last step before COMMIT (the `beforeCommit` hook, where the rollback anchor
 * writes).
 */
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { StoreError } from '../types.js';
import { GroupCommit } from './group-commit.js';
import { tempDir } from '../../../test/helpers/temp.js';

async function failedBatch(code: string): Promise<{ err: StoreError; rows: number }> {
  const db = new Database(path.join(tempDir('spike-gc-'), 'gc.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (v TEXT)');
    const gc = new GroupCommit(db, { enabled: true, maxBatch: 8, windowMs: 0 });
    gc.beforeCommit = () => {
      throw Object.assign(new Error(`injected ${code}`), { code });
    };
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const results = await Promise.allSettled([1, 2, 3].map((i) => gc.run(() => insert.run(`v${i}`))));
    const errs = results.map((r) => (r.status === 'rejected' ? r.reason : undefined));
    assert.ok(errs.every((e) => e instanceof StoreError), 'every write of the batch refused');
    return { err: errs[0] as StoreError, rows: (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n };
  } finally {
    db.close();
  }
}

test('ENV-01: a batch rolled back after SQLITE_FULL answers outcome not_applied (nothing written: safe to retry)', async () => {
  const { err, rows } = await failedBatch('SQLITE_FULL');
  assert.equal(err.failure, 'disk_full');
  assert.equal(err.outcome, 'not_applied');
  assert.equal(rows, 0);
});

test('ENV-01: a batch rolled back after an I/O error carries no not_applied (a commit frame may be whole)', async () => {
  for (const code of ['SQLITE_IOERR_FSYNC', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR']) {
    const { err, rows } = await failedBatch(code);
    assert.equal(err.code, 'store_unavailable', code);
    assert.notEqual(err.outcome, 'not_applied', code);
    assert.equal(rows, 0, code);
  }
});
