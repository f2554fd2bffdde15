/**
 * The store behind bench/echo-server.ts's `--sealed` mode: the work per request that a sealed
 * secrets store without a plaintext cache cannot skip, done the way Nexus does it but with
 * nothing else around it (report rows `p1.cpu.c32.vs_sealed_read`, `p2.cpu.c64.vs_sealed_write`).
 *
 * - Records: Nexus's table shapes in a WAL file, 2,000 sealed records at
 *   start; record ids are HMAC-SHA-256 of the path, remembered per path as Nexus remembers them.
 * - `read`: Nexus's one SQLite statement (`READ_SECRET_SQL`) returning the metadata and newest
 *   value blobs, the metadata only when it differs from the blob opened before (Nexus's
 *   metadata memo; then it is opened with AES-256-GCM); the values are opened with AES-256-GCM
 *   and parsed.
 * - `write`: writes queue up and commit together once per event-loop turn (Nexus's group
 *   commit), in one transaction: per write, the metadata row read (memo as above), the new
 *   version added (10 kept, the oldest dropped), metadata and values sealed with AES-256-GCM,
 *   the rows written; the writes are answered once an `fdatasync` of the WAL, started after
 *   their COMMIT on libuv's thread pool, completed (Nexus's durability: `synchronous=NORMAL`
 *   and the WAL synced off the event loop, so batches form as they do in Nexus).
 * Sealing, opening and record ids use Nexus's own `Aead`, `recordAad` and `PathHasher`. Keys
 * are random, made at start, never written anywhere.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Aead } from '../src/crypto/aead.js';
import { PathHasher } from '../src/crypto/hmac.js';
import { KIND_SECRET, recordAad } from '../src/store/codec.js';
import { READ_META_SQL, READ_SECRET_SQL } from '../src/store/sqlite/statements.js';

const MAX_VERSIONS = 10;

interface Meta { cur: number; old: number; last: number; ct: number; ut: number; max: number; vs: Array<[number, number, null]> }

export interface SealedEchoStore {
  /** Reads the record a request names; throws when it cannot. */
  read(request: unknown): void;
  /** Writes a request's `values` as a new version of its `path`; settles once committed. */
  write(request: unknown): Promise<void>;
}

/** Opens the store in `dir` with 2,000 records, `benchPath`'s among them, holding `values`. */
export async function openSealedEchoStore(dir: string, benchPath: string, values: Record<string, string>): Promise<SealedEchoStore> {
  const { default: Database } = await import('better-sqlite3');
  const hasher = new PathHasher(randomBytes(32));
  const aead = new Aead(randomBytes(32), 1);
  const seal = (plain: Buffer, id: Buffer, version: number, field: string): Buffer => aead.seal(plain, recordAad(KIND_SECRET, id, version, field));
  const open = (blob: Buffer, id: Buffer, version: number, field: string): Buffer => {
    const plain = aead.open(blob, recordAad(KIND_SECRET, id, version, field));
    return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
  };
  const file = path.join(dir, 'sealed-echo.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE secrets (id BLOB PRIMARY KEY, path BLOB NOT NULL, meta BLOB NOT NULL) STRICT, WITHOUT ROWID;
    CREATE TABLE secret_versions (id BLOB NOT NULL, version INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY (id, version)) STRICT, WITHOUT ROWID;`);
  const st = {
    // Nexus's read: one statement, the metadata row and the highest version's value row.
    read: db.prepare(READ_SECRET_SQL).raw(),
    meta: db.prepare(READ_META_SQL).pluck(),
    insert: db.prepare('INSERT INTO secrets (id, path, meta) VALUES (?, ?, ?)'),
    update: db.prepare('UPDATE secrets SET meta = ? WHERE id = ?'),
    putValue: db.prepare('INSERT INTO secret_versions (id, version, value) VALUES (?, ?, ?)'),
    dropValue: db.prepare('DELETE FROM secret_versions WHERE id = ? AND version = ?'),
  };
  const ids = new Map<string, Buffer>();
  const idOf = (p: string): Buffer => {
    let id = ids.get(p);
    if (id === undefined) ids.set(p, (id = hasher.hash(`s:${p}`)));
    return id;
  };
  /** The metadata opened last per record and the blob it came from. */
  const memo = new Map<string, { blob: Buffer; meta: Meta }>();
  const metaOf = (id: Buffer, blob: Buffer): Meta => {
    const known = memo.get(id.toString('latin1'));
    if (known !== undefined && known.blob.equals(blob)) return known.meta;
    const meta = JSON.parse(open(blob, id, 0, 'meta').toString('utf8')) as Meta;
    memo.set(id.toString('latin1'), { blob, meta });
    return meta;
  };
  const putOne = (p: string, vals: Record<string, string>): void => {
    const id = idOf(p);
    // As Nexus: the metadata comes back as 0 when it equals the remembered blob.
    const known = memo.get(id.toString('latin1'))?.blob;
    const got = st.meta.get(known ?? null, id) as Buffer | 0 | null | undefined;
    if (got === null || (got === 0 && known === undefined)) throw new Error('bad metadata row');
    const row = got === undefined ? undefined : got === 0 ? known! : got;
    const now = Date.now();
    const prev = row === undefined ? undefined : metaOf(id, row);
    const meta: Meta = prev === undefined
      ? { cur: 0, old: 1, last: 0, ct: now, ut: now, max: MAX_VERSIONS, vs: [] }
      : { ...prev, vs: [...prev.vs] };
    const version = meta.last + 1;
    meta.vs.push([version, now, null]);
    meta.cur = version;
    meta.last = version;
    meta.ut = now;
    while (meta.vs.length > meta.max) st.dropValue.run(id, meta.vs.shift()![0]);
    meta.old = meta.vs[0]![0];
    const blob = seal(Buffer.from(JSON.stringify(meta)), id, 0, 'meta');
    if (row === undefined) st.insert.run(id, seal(Buffer.from(p), id, 0, 'path'), blob);
    else st.update.run(blob, id);
    const plain = Buffer.from(JSON.stringify(Object.entries(vals)));
    st.putValue.run(id, version, seal(plain, id, version, 'values'));
    plain.fill(0);
    memo.set(id.toString('latin1'), { blob, meta });
  };
  const seed = db.transaction(() => {
    for (let i = 0; i < 1999; i++) putOne(`bench/sealed/${i}`, values);
    putOne(benchPath, values);
  });
  seed();
  const wal = fs.openSync(`${file}-wal`, 'r+');

  let queue: Array<{ p: string; values: Record<string, string>; done: (e?: unknown) => void }> = [];
  const commit = db.transaction((batch: typeof queue) => {
    for (const w of batch) putOne(w.p, w.values);
  });
  const flush = (): void => {
    const batch = queue;
    queue = [];
    try {
      commit(batch);
    } catch (e) {
      for (const w of batch) w.done(e);
      return;
    }
    fs.fdatasync(wal, (e) => {
      for (const w of batch) w.done(e ?? undefined);
    });
  };
  const pathOf = (request: unknown): string => {
    const p = (request as { path?: unknown } | null)?.path;
    if (typeof p !== 'string') throw new Error('no path');
    return p;
  };
  return {
    read(request) {
      const id = idOf(pathOf(request));
      const known = memo.get(id.toString('latin1'))?.blob;
      const row = st.read.get(known ?? null, 0, 0, id, id) as [Buffer | 0 | null, number | null, Buffer | null] | undefined;
      const meta = row?.[0] === 0 ? known : row?.[0] ?? undefined;
      if (row === undefined || meta === undefined || row[1] === null || row[2] === null) throw new Error('no such record');
      metaOf(id, meta);
      const v = open(row[2], id, row[1], 'values');
      JSON.parse(v.toString('utf8'));
      v.fill(0);
    },
    write(request) {
      let p: string;
      try {
        p = pathOf(request);
      } catch (e) {
        return Promise.reject(e);
      }
      const vals = (request as { values?: unknown }).values;
      if (typeof vals !== 'object' || vals === null) return Promise.reject(new Error('no values'));
      return new Promise<void>((resolve, reject) => {
        if (queue.length === 0) setImmediate(flush);
        queue.push({ p, values: vals as Record<string, string>, done: (e) => (e === undefined ? resolve() : reject(e)) });
      });
    },
  };
}
