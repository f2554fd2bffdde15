/**
 * The log's in-place rewrite (settle-log.ts): every byte of the log written back, in order,
 * then one sync; the content unchanged. A partial rewrite (the tail of each chunk, say) would
 * leave pages that a failed sync of a previous run left clean in the page cache off the disk,
 * and a sync before the last write would not cover it. Real file, recorded operations.
 * The start-up rewrite runs under SQLite's write lock: another process that tries to write
 * while the log is being written back is refused (busy), and writes once it is done.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { rewriteLog, settleLog, type LogIo } from './settle-log.js';
import { tempDir } from '../../../test/helpers/temp.js';
import { oldSnapshot } from '../../../test/helpers/sqlite-snapshot.js';

test('D12 settle: rewriteLog writes every byte of the log back in place, in order, then syncs once; the bytes are unchanged', () => {
  const file = path.join(tempDir('spike-settle-'), 'spike.db-wal');
  const original = randomBytes(2.5 * 2 ** 20 + 123); // several chunks, the last one partial
  fs.writeFileSync(file, original);
  const ops: Array<{ op: 'write'; from: number; to: number; same: boolean } | { op: 'sync' }> = [];
  let calls = 0;
  const io: LogIo = {
    read: (fd, buf, position) => fs.readSync(fd, buf, 0, buf.length, position),
    write: (fd, buf, offset, length, position) => {
      // Every third call writes only part of what it was given: the caller must go on.
      const n = ++calls % 3 === 0 ? Math.min(length, 4096) : length;
      const wrote = fs.writeSync(fd, buf, offset, n, position);
      ops.push({ op: 'write', from: position, to: position + wrote, same: buf.subarray(offset, offset + wrote).equals(original.subarray(position, position + wrote)) });
      return wrote;
    },
    sync: (fd) => {
      fs.fdatasyncSync(fd);
      ops.push({ op: 'sync' });
    },
  };
  rewriteLog(file, io);
  const writes = ops.filter((o) => o.op === 'write');
  assert.ok(writes.length > 3, `several writes (${writes.length})`);
  let covered = 0;
  for (const w of writes) {
    assert.equal(w.from, covered, 'each write starts where the previous one ended');
    assert.ok(w.same, 'the bytes written are the log\'s own');
    covered = w.to;
  }
  assert.equal(covered, original.length, 'the whole log was written back');
  assert.deepEqual(ops.at(-1), { op: 'sync' }, 'synced after the last write');
  assert.equal(ops.filter((o) => o.op === 'sync').length, 1);
  assert.ok(fs.readFileSync(file).equals(original), 'the log is unchanged');
});

test('D12 settle: rewriteLog of a missing log does nothing; a failing sync is thrown', () => {
  const dir = tempDir('spike-settle-');
  rewriteLog(path.join(dir, 'absent-wal'));
  const file = path.join(dir, 'spike.db-wal');
  fs.writeFileSync(file, randomBytes(1000));
  const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
  assert.throws(() => rewriteLog(file, {
    read: (fd, buf, position) => fs.readSync(fd, buf, 0, buf.length, position),
    write: (fd, buf, offset, length, position) => fs.writeSync(fd, buf, offset, length, position),
    sync: () => { throw eio; },
  }), (e: unknown) => e === eio);
});

/**
 * Another process tries one write to `file` at once (no busy wait) and says how it went:
 * `wrote`, or `busy` when another connection holds the write lock.
 */
function otherProcessWrites(file: string, tag: string): string {
  const script = `
    const Database = require(${JSON.stringify(createRequire(import.meta.url).resolve('better-sqlite3'))});
    const db = new Database(process.argv[1], { timeout: 0 });
    try {
      db.prepare('INSERT INTO system (key, value) VALUES (?, ?)').run(process.argv[2], Buffer.from('x'));
      process.stdout.write('wrote');
    } catch (e) {
      process.stdout.write(String(e.code).startsWith('SQLITE_BUSY') ? 'busy' : String(e.code));
    } finally {
      db.close();
    }`;
  const r = spawnSync(process.execPath, ['-e', script, file, tag], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('D12 settle: the start-up rewrite holds SQLite\'s write lock: another process\'s write is refused while the log is written back, and goes through after', () => {
  const file = path.join(tempDir('spike-settle-lock-'), 'spike.db');
  const setup = new Database(file);
  setup.pragma('journal_mode = WAL');
  setup.exec('CREATE TABLE system (key TEXT, value BLOB)');
  setup.close();
  // A reader holding a snapshot older than the last commit keeps the TRUNCATE checkpoint from
  // completing, so the log is rewritten in place instead.
  const { reader, writer } = oldSnapshot(file);
  const db = new Database(file, { timeout: 100 });
  const during: string[] = [];
  const io: LogIo = {
    read: (fd, buf, position) => {
      if (position === 0) during.push(otherProcessWrites(file, 'during'));
      return fs.readSync(fd, buf, 0, buf.length, position);
    },
    write: (fd, buf, offset, length, position) => fs.writeSync(fd, buf, offset, length, position),
    sync: (fd) => fs.fdatasyncSync(fd),
  };
  try {
    const { unsettled } = settleLog(db, undefined, io);
    assert.equal(unsettled, false, 'rewritten at start');
    assert.deepEqual(during, ['busy'], 'another process could write while the log was being rewritten');
    assert.equal(otherProcessWrites(file, 'after'), 'wrote', 'the lock is released after the rewrite');
    assert.deepEqual(db.prepare('SELECT key FROM system ORDER BY rowid').all(), [{ key: 'after-snapshot' }, { key: 'after' }]);
  } finally {
    reader.exec('COMMIT');
    for (const d of [reader, writer, db]) d.close();
  }
});
