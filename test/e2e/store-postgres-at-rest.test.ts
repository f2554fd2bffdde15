/**
 * At-rest guarantees of the `postgres` backend on a real server (D8/D9, STO-11):
 * canary values, paths, value key names, custom metadata, policy names/patterns/SPIFFE
 * ids and a canary clock are written, overwritten, deleted, pruned, destroyed through two
 * instances; after a CHECKPOINT,
 * 1. a plain-text `pg_dump` of the database is scanned for every canary in every
 *    encoding (raw, UTF-16, hex, base64 at each alignment; timestamps as decimal and as
 *    64-bit integers/doubles in both byte orders, plus the ISO form) → zero hits;
 * 2. every file of the cluster — table and index files, the WAL (`pg_wal`), everything —
 *    and the server log are scanned for the run's unique tag (contained in every textual
 *    canary) and the clock's encodings → zero hits.
 * A positive control then writes the tag in clear through SQL and checks that BOTH scans
 * find it, so neither scan can pass vacuously.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { RootKey } from '../../src/crypto/index.js';
import { openPostgresStore } from '../../src/store/postgres/store.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

const run = promisify(execFile);

/** Every byte pattern under which `s` could appear. */
function encodings(s: string | Buffer): Buffer[] {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  const out: Buffer[] = [b, Buffer.from(b.toString('hex')), Buffer.from(b.toString('hex').toUpperCase())];
  if (typeof s === 'string') out.push(Buffer.from(s, 'utf16le'));
  for (let pad = 0; pad < 3; pad++) {
    const enc = Buffer.concat([Buffer.alloc(pad, 0x41), b]).toString('base64');
    const start = Math.ceil((pad * 4) / 3) + 1;
    const core = enc.slice(start, enc.length - 4);
    if (core.length >= 8) {
      out.push(Buffer.from(core));
      out.push(Buffer.from(core.replace(/\+/g, '-').replace(/\//g, '_')));
    }
  }
  return out;
}

function int64(n: number, le: boolean): Buffer {
  const b = Buffer.alloc(8);
  if (le) b.writeBigInt64LE(BigInt(n)); else b.writeBigInt64BE(BigInt(n));
  return b;
}

function double(n: number, le: boolean): Buffer {
  const b = Buffer.alloc(8);
  if (le) b.writeDoubleLE(n); else b.writeDoubleBE(n);
  return b;
}

function* filesUnder(dir: string): Generator<string> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* filesUnder(p);
    else if (e.isFile()) yield p;
  }
}

function scanBuffer(data: Buffer, where: string, canaries: Map<string, Buffer[]>, hits: string[]): void {
  for (const [label, pats] of canaries) {
    for (const p of pats) if (data.includes(p)) hits.push(`${where}: ${label}`);
  }
}

let srv: TestPostgres;
before(async () => {
  srv = await startPostgres();
});
after(async () => {
  await srv?.stop();
});

test('STO-11 / P1 (postgres): no value, path, metadata, policy or timestamp canary in pg_dump, data files, WAL or log', async (t) => {
  const url = srv.connectionString;
  const db = url.slice(url.lastIndexOf('/') + 1);
  const tag = randomBytes(6).toString('hex');
  const T0 = Date.UTC(2031, 6, 19, 12, 34, 56, 789);
  let clock = T0;
  const now = (): Date => new Date(clock++);
  const root = RootKey.generate();

  const full = new Map<string, Buffer[]>(); // for the dump: every canary, every encoding
  const add = (label: string, s: string | Buffer): void => { full.set(label, [...(full.get(label) ?? []), ...encodings(s)]); };
  const vals = Array.from({ length: 8 }, (_, i) => `VALCANARY${tag}${i}`);
  const paths = Array.from({ length: 8 }, (_, i) => `pathcanary${tag}/db${i}/creds`);
  vals.forEach((v, i) => add(`value ${i}`, v));
  paths.forEach((p, i) => add(`path ${i}`, p));
  paths.forEach((p, i) => add(`path segment ${i}`, `pathcanary${tag}/db${i}`));
  add('value key name', `keycanary${tag}`);
  add('custom metadata', `cmcanary${tag}`);
  add('policy name', `polcanary${tag}`);
  add('policy pattern', `patcanary${tag}`);
  add('policy spiffe id', `spiffe://idcanary${tag}.example/app`);
  add('iso timestamp', new Date(T0).toISOString().slice(0, 16));
  for (let d = 0; d < 400; d++) {
    const ms = T0 + d;
    // pg_dump prints bytea as hex text: binary forms are searched raw AND hex-encoded.
    full.set(`timestamp ${d}`, [Buffer.from(String(ms)),
      ...[int64(ms, false), int64(ms, true), double(ms, false), double(ms, true)].flatMap((x) => encodings(x))]);
  }
  full.set('timestamp seconds', [Buffer.from(String(Math.floor(T0 / 1000)))]);

  // For the raw cluster files (tens of MB): the tag — inside every textual canary, so any
  // textual canary in any of these encodings contains one of the tag's — and the clock
  // (every reading shares these leading/trailing bytes; checked below).
  const raw = new Map<string, Buffer[]>();
  raw.set('tag', encodings(tag));
  raw.set('iso timestamp', [Buffer.from(new Date(T0).toISOString().slice(0, 16))]);
  raw.set('timestamp decimal', [Buffer.from(String(T0).slice(0, 10))]);
  raw.set('timestamp int64', [int64(T0, false).subarray(0, 6), int64(T0, true).subarray(2)]);
  for (let d = 0; d < 400; d++) {
    assert.ok(int64(T0 + d, false).subarray(0, 6).equals(int64(T0, false).subarray(0, 6)), 'clock prefix covers every reading');
  }

  const a = await openPostgresStore({ connectionString: url, now, defaultMaxVersions: 3 });
  const b = await openPostgresStore({ connectionString: url, now });
  try {
    await a.unlock(root);
    await b.unlock(root);
    for (let round = 0; round < 5; round++) {
      const s = round % 2 === 0 ? a : b;
      await Promise.all(paths.map((p, i) => s.putSecret(p, { [`keycanary${tag}`]: vals[(i + round) % vals.length]!, pw: vals[i]! },
        round === 0 ? { customMetadata: { owner: `cmcanary${tag}` } } : {})));
    }
    await a.deleteSecret(paths[0]!, []);
    await b.deleteSecret(paths[1]!, [3, 4]);
    await a.undeleteSecret(paths[1]!, [4]);
    await b.destroySecret(paths[2]!, []);
    await a.putPolicy({ name: `polcanary${tag}`, spiffeIdPattern: `^spiffe://idcanary${tag}.example/app$`, pathPattern: `patcanary${tag}/.*`, permissions: ['read'] });
    await b.putPolicy({ name: `polcanary${tag}-2`, spiffeIdPattern: 'x', pathPattern: 'y', permissions: ['list'] });
    await a.deletePolicy(`polcanary${tag}-2`);
    // Everything is readable (the scan is of real, used data).
    assert.equal((await b.listSecretPaths()).length, paths.length);
    assert.equal((await b.getPolicy(`polcanary${tag}`))?.pathPattern, `patcanary${tag}/.*`);
    assert.ok(clock > T0 + 40 && clock < T0 + 400, 'every clock reading is among the canaries');
  } finally {
    await a.close();
    await b.close();
    root.destroy();
  }

  const scanAll = async (): Promise<{ dumpHits: string[]; rawHits: string[]; bytes: number }> => {
    await srv.psql('CHECKPOINT');
    const { stdout } = await run(path.join(srv.binDir, 'pg_dump'), ['-h', '127.0.0.1', '-p', String(srv.port), '-U', 'postgres', db],
      { encoding: 'buffer', maxBuffer: 256 << 20 });
    const dumpHits: string[] = [];
    scanBuffer(stdout, 'pg_dump', full, dumpHits);
    const rawHits: string[] = [];
    let bytes = 0;
    for (const f of [...filesUnder(srv.dataDir), srv.logFile]) {
      const data = fs.readFileSync(f);
      bytes += data.length;
      scanBuffer(data, path.relative(srv.dir, f), raw, rawHits);
    }
    return { dumpHits, rawHits, bytes };
  };

  const clean = await scanAll();
  t.diagnostic(`scanned a ${full.size}-canary pg_dump and ${(clean.bytes / 2 ** 20).toFixed(1)} MiB of cluster files`);
  assert.deepEqual(clean.dumpHits, [], 'plaintext in pg_dump');
  assert.deepEqual(clean.rawHits, [], 'plaintext in the cluster files');

  // Positive control: the same scans find the tag once it is stored in clear.
  await srv.psql(`CREATE TABLE control_plain (t text); INSERT INTO control_plain VALUES ('VALCANARY${tag}0')`, db);
  const dirty = await scanAll();
  assert.ok(dirty.dumpHits.some((h) => h.includes('value 0')), 'the dump scan must find a clear canary');
  assert.ok(dirty.rawHits.some((h) => h.includes('tag')), 'the file scan must find a clear canary');
});
