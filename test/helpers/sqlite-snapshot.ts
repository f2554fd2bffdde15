/**
 * Test helper (not a test): another process's reader holding a SQLite snapshot older than the
 * last commit, which keeps a TRUNCATE checkpoint of `file` from completing.
 */
import Database from 'better-sqlite3';

/**
 * Opens a reader on `file` and starts a read (its snapshot), then commits one row to the
 * `system (key, value)` table through a second connection (`writer`, left open, automatic
 * checkpoints off) after that snapshot. Close both when done (COMMIT the reader first).
 */
export function oldSnapshot(file: string): { reader: Database.Database; writer: Database.Database } {
  const reader = new Database(file);
  const writer = new Database(file);
  writer.pragma('wal_autocheckpoint = 0');
  reader.exec('BEGIN');
  reader.prepare('SELECT count(*) FROM system').get(); // a snapshot before the next commit
  writer.prepare('INSERT INTO system (key, value) VALUES (?, ?)').run('after-snapshot', Buffer.from('y'));
  return { reader, writer };
}
