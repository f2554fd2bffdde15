/**
 * The P1/P7 baseline server: a bare Node `https` mTLS server (TLS 1.3, client certificate
 * required and verified against the trust bundle) that answers every request with fixed
 * bytes — the exact JSON body and headers Nexus returned for the same GET. It parses the
 * request body as JSON, as Nexus does, but does no routing, authorisation or storage.
 * `POST /stream` instead pipes the request body back (the transport ceiling for P5).
 *
 * `--sealed-read <dir> <path> <values JSON>` (report row `p1.cpu.c32.vs_sealed_read`): before
 * answering a request for `<path>` (a secret holding those values) it also does the store read
 * that a sealed store cannot skip, as Nexus does it but with nothing else around it: the
 * path's record id (HMAC-SHA-256, remembered per path as Nexus remembers it), one SQLite
 * statement (WAL file in `<dir>`, 2,000 records, Nexus's table shapes) returning the metadata
 * and value blobs, the metadata blob compared with the one opened before (Nexus's metadata
 * memo; opened with AES-256-GCM when it differs), and the values opened with AES-256-GCM and
 * parsed. Its keys are random, made at start, never written.
 *
 * Run as a child process by `bench/stack-bench.ts`: credentials arrive on stdin as four
 * length-prefixed frames (certificate chain PEM, private key PEM, CA PEM, reply body) plus
 * one frame of reply headers (JSON), so no key touches the disk or the environment. Prints
 * `echo ready <port>` on stdout once listening.
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import https from 'node:https';
import path from 'node:path';

/** Checks that a request names the sealed record; throws when it cannot be read. */
type SealedRead = (request: unknown) => void;

const NONCE = 12;
const TAG = 16;

function seal(key: KeyObject, plain: Buffer, ad: Buffer): Buffer {
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG });
  c.setAAD(ad);
  return Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]);
}

function open(key: KeyObject, blob: Buffer, ad: Buffer): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, blob.subarray(0, NONCE), { authTagLength: TAG });
  d.setAAD(ad);
  d.setAuthTag(blob.subarray(blob.length - TAG));
  const body = d.update(blob.subarray(NONCE, blob.length - TAG));
  d.final();
  return body;
}

/** The `--sealed-read` store (see the top): 2,000 sealed records, `benchPath`'s among them. */
async function sealedReader(dir: string, benchPath: string, values: unknown): Promise<SealedRead> {
  const { default: Database } = await import('better-sqlite3');
  const hmacKey = createSecretKey(randomBytes(32));
  const aeadKey = createSecretKey(randomBytes(32));
  const idOf = (p: string): Buffer => createHmac('sha256', hmacKey).update(`s:${p}`, 'utf8').digest();
  const db = new Database(path.join(dir, 'sealed-read.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE secrets (id BLOB PRIMARY KEY, path BLOB NOT NULL, meta BLOB NOT NULL) STRICT, WITHOUT ROWID;
    CREATE TABLE secret_versions (id BLOB NOT NULL, version INTEGER NOT NULL, value BLOB NOT NULL, PRIMARY KEY (id, version)) STRICT, WITHOUT ROWID;`);
  const now = Date.now();
  const meta = Buffer.from(JSON.stringify({ cur: 1, old: 1, last: 1, ct: now, ut: now, max: 10, vs: [[1, now, null]] }));
  const plain = Buffer.from(JSON.stringify(Object.entries(values as Record<string, string>)));
  const put = db.transaction((p: string) => {
    const id = idOf(p);
    db.prepare('INSERT INTO secrets (id, path, meta) VALUES (?, ?, ?)').run(id, seal(aeadKey, Buffer.from(p), id), seal(aeadKey, meta, id));
    db.prepare('INSERT INTO secret_versions (id, version, value) VALUES (?, 1, ?)').run(id, seal(aeadKey, plain, id));
  });
  for (let i = 0; i < 1999; i++) put(`bench/sealed/${i}`);
  put(benchPath);
  const read = db.prepare(`SELECT s.meta AS meta, v.value AS value FROM secrets s
    JOIN secret_versions v ON v.id = s.id AND v.version = 1 WHERE s.id = ?`);
  const ids = new Map<string, Buffer>();
  let openedMeta: Buffer | undefined;
  return (request) => {
    const p = (request as { path?: unknown } | null)?.path;
    if (typeof p !== 'string') throw new Error('no path');
    let id = ids.get(p);
    if (id === undefined) ids.set(p, (id = idOf(p)));
    const row = read.get(id) as { meta: Buffer; value: Buffer } | undefined;
    if (row === undefined) throw new Error('no such record');
    if (openedMeta === undefined || !openedMeta.equals(row.meta)) {
      JSON.parse(open(aeadKey, row.meta, id).toString('utf8'));
      openedMeta = row.meta;
    }
    const v = open(aeadKey, row.value, id);
    JSON.parse(v.toString('utf8'));
    v.fill(0);
  };
}

function readFrames(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt32BE(off);
    out.push(buf.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return out;
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const all = Buffer.concat(chunks);
  const [cert, key, ca, body, hdrs] = readFrames(all);
  if (!cert || !key || !ca || !body || !hdrs) throw new Error('echo-server: bad input');
  const headers = JSON.parse(hdrs.toString('utf8')) as Record<string, string>;
  const reply = Buffer.from(body);
  const sealedAt = process.argv.indexOf('--sealed-read');
  const sealed = sealedAt < 0 ? undefined
    : await sealedReader(process.argv[sealedAt + 1] ?? '', process.argv[sealedAt + 2] ?? '', JSON.parse(process.argv[sealedAt + 3] ?? '{}'));
  const srv = https.createServer({
    cert, key, ca,
    requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3', keepAliveTimeout: 30_000,
  }, (req, res) => {
    if (req.url === '/stream') {
      // P5 transport ceiling: the request body streamed straight back, no crypto of its own.
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      req.pipe(res);
      return;
    }
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      try {
        const request: unknown = JSON.parse(Buffer.concat(parts).toString('utf8'));
        sealed?.(request);
      } catch {
        res.writeHead(400).end();
        return;
      }
      res.writeHead(200, { ...headers, 'Content-Length': reply.length });
      res.end(reply);
    });
  });
  all.fill(0); // the key frame lives in `all`; the TLS context holds its own copy now
  srv.listen(0, '127.0.0.1', () => {
    const addr = srv.address();
    process.stdout.write(`echo ready ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`echo-server failed: ${e instanceof Error ? e.message : 'unknown error'}\n`);
  process.exit(1);
});
