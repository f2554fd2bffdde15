/**
 * Encryption as a service against a real stack (agent, 3 Keepers, sqlite Nexus, Bootstrap):
 * JSON and stream round-trips (0 B, 1 B, 1 MiB, 64 MiB), the CLI, size caps, SPIKE's stream
 * framing errors, tamper and storage-row refusal (CIP-01..05, CIP-07, CIP-08, CIP-10, CIP-12) and SPIKE's
 * cipher permission rule (Pilot, Lite, `execute` on `spike/system/cipher/exec`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { Stack } from '../helpers/stack.js';
import type { NexusClient } from '../../src/sdk/index.js';
import { NexusApiError } from '../../src/sdk/errors.js';
import { rawClient } from './secrets-helpers.js';

const MiB = 1024 * 1024;
/** JSON cap raised so that a 1 MiB JSON round-trip fits (plaintext cap = this − 16). */
const JSON_MAX_CT = MiB + 16;

let stack: Stack;
let pilot: NexusClient;

before(async () => {
  stack = await Stack.start({
    identities: {
      'app-none': 'spiffe://spike.ist/workload/app-none',
      'app-exec': 'spiffe://spike.ist/workload/app-exec',
      'app-read': 'spiffe://spike.ist/workload/app-read',
    },
    nexusEnv: { SPIKE_NEXUS_CRYPTO_MAX_CIPHERTEXT_SIZE: String(JSON_MAX_CT) },
  });
  pilot = await stack.client('pilot');
});

after(async () => {
  await stack?.stop();
});

async function drain(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function apiError(p: Promise<unknown>): Promise<NexusApiError> {
  try {
    const r = await p;
    if (r instanceof Readable) await drain(r);
  } catch (e) {
    if (e instanceof NexusApiError) return e;
    throw e;
  }
  assert.fail('expected a NexusApiError');
}

/** Every stored secret value blob, read straight from the SQLite file. */
function storedRows(): Array<{ value: Buffer }> {
  const db = new Database(path.join(stack.dir, 'data', 'spike.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT value FROM secret_versions').all() as Array<{ value: Buffer }>;
  } finally {
    db.close();
  }
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('CIP round-trip JSON: 0 B, 1 B, 1 MiB (the configured cap); cap + 1 refused with 400', async () => {
  for (const size of [0, 1, 1000, MiB]) {
    const pt = randomBytes(size);
    const ct = await pilot.encrypt(pt);
    assert.equal(ct.version, 1);
    assert.equal(ct.nonce.length, 12);
    assert.equal(ct.ciphertext.length, size + 16);
    const back = await pilot.decrypt(ct);
    assert.equal(Buffer.from(back).equals(pt), true, `size ${size}`);
  }
  const e = await apiError(pilot.encrypt(randomBytes(MiB + 1)));
  assert.equal(e.status, 400);
  assert.equal(e.wireErr, 'api_bad_request');
});

test('CIP round-trip stream: 0 B, 1 B, 1 MiB, 64 MiB; SPIKE framing 0x01 ‖ nonce ‖ ct ‖ tag', async () => {
  for (const size of [0, 1, MiB, 64 * MiB]) {
    const pt = randomBytes(size);
    const ct = await drain(await pilot.encryptStream(pt));
    assert.equal(ct.length, size + 29, `size ${size}`);
    assert.equal(ct[0], 1);
    const back = await drain(await pilot.decryptStream(ct));
    assert.equal(back.length, size);
    assert.equal(sha(back), sha(pt), `size ${size}`);
  }
});

test('CIP stream encrypt of an unknown-length (chunked) 64 MiB body keeps Nexus memory bounded', async () => {
  const pid = stack.nexusProcess()?.pid;
  assert.ok(pid);
  const rssKiB = (): number => {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m?.[1] ?? 0);
  };
  const chunk = randomBytes(MiB);
  const hash = createHash('sha256');
  let n = 0;
  const src = new Readable({
    read() {
      if (n === 64) return void this.push(null);
      n++;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  let peakKiB = rssKiB();
  const base = peakKiB;
  const timer = setInterval(() => { peakKiB = Math.max(peakKiB, rssKiB()); }, 20);
  const out = await pilot.encryptStream(src);
  let ctLen = 0;
  const parts: Buffer[] = [];
  for await (const c of out) {
    ctLen += (c as Buffer).length;
    parts.push(c as Buffer);
  }
  clearInterval(timer);
  assert.equal(ctLen, 64 * MiB + 29);
  // Buffering the body would need ≥ 64 MiB more; streaming needs a few chunks (GC slack allowed).
  assert.ok(peakKiB - base < 40 * 1024, `nexus RSS grew by ${Math.round((peakKiB - base) / 1024)} MiB`);
  const back = await drain(await pilot.decryptStream(Buffer.concat(parts)));
  assert.equal(sha(back), hash.digest('hex'));
});

test('CIP-05/CIP-06: stream bodies over the cap are refused with 400 before being read', async () => {
  const e = await apiError(pilot.encryptStream(Buffer.alloc(64 * MiB + 1)));
  // The declared length decides: 400, connection closed (a client may see the close first).
  assert.ok(e.status === 400 || e.code === 'net_peer_connection', `got ${e.code}/${e.status}`);
  const d = await apiError(pilot.decryptStream(Buffer.alloc(64 * MiB + 30, 1)));
  assert.ok(d.status === 400 || d.code === 'net_peer_connection', `got ${d.code}/${d.status}`);
  // JSON decrypt: ciphertext over the configured max.
  const j = await apiError(pilot.decrypt({ version: 1, nonce: Buffer.alloc(12), ciphertext: Buffer.alloc(JSON_MAX_CT + 1) }));
  assert.equal(j.status, 400);
});

test('CIP-01: one flipped bit in ciphertext or tag → 400 with one decrypt-failure answer in both modes', async () => {
  const pt = Buffer.from('attack at dawn');
  const ct = await pilot.encrypt(pt);
  for (const pos of [0, ct.ciphertext.length - 1]) {
    const bad = Buffer.from(ct.ciphertext);
    bad[pos]! ^= 0x01;
    const e = await apiError(pilot.decrypt({ ...ct, ciphertext: bad }));
    assert.equal(e.status, 400);
    assert.equal(e.wireErr, 'api_bad_request');
  }
  const badNonce = Buffer.from(ct.nonce);
  badNonce[0]! ^= 0x80;
  assert.equal((await apiError(pilot.decrypt({ ...ct, nonce: badNonce }))).status, 400);

  const s = await drain(await pilot.encryptStream(pt));
  for (const pos of [1, 13, s.length - 1]) {
    const bad = Buffer.from(s);
    bad[pos]! ^= 0x01;
    const e = await apiError(pilot.decryptStream(bad));
    assert.equal(e.status, 400);
    assert.equal(e.wireErr, 'decryption_failed');
  }
  // Truncation (tag cut off) is the same failure.
  const e = await apiError(pilot.decryptStream(s.subarray(0, s.length - 1)));
  assert.equal(e.wireErr, 'decryption_failed');
});

test('CIP-02/CIP-03/CIP-04: stream framing and JSON field errors → 400 with SPIKE codes', async () => {
  const cases: Array<[Buffer, string]> = [
    [Buffer.alloc(0), 'crypto_failed_to_read_version'],
    [Buffer.from([1]), 'crypto_failed_to_read_nonce'],
    [Buffer.concat([Buffer.from([1]), randomBytes(11)]), 'crypto_failed_to_read_nonce'],
    [Buffer.concat([Buffer.from([0]), randomBytes(40)]), 'crypto_unsupported_version'],
    [Buffer.concat([Buffer.from([2]), randomBytes(40)]), 'crypto_unsupported_version'],
    [Buffer.concat([Buffer.from([0xff]), randomBytes(40)]), 'crypto_unsupported_version'],
    [Buffer.concat([Buffer.from([1]), randomBytes(12 + 15)]), 'decryption_failed'],
  ];
  for (const [body, code] of cases) {
    const e = await apiError(pilot.decryptStream(body));
    assert.equal(e.status, 400, code);
    assert.equal(e.wireErr, code);
  }
  const ct = await pilot.encrypt(Buffer.from('x'));
  for (const nonce of [Buffer.alloc(11), Buffer.alloc(13)]) {
    assert.equal((await apiError(pilot.decrypt({ ...ct, nonce }))).status, 400);
  }
  for (const version of [0, 2, 255]) {
    assert.equal((await apiError(pilot.decrypt({ ...ct, version }))).status, 400);
  }
  assert.equal((await apiError(pilot.decrypt({ ...ct, ciphertext: Buffer.alloc(15) }))).status, 400);
});

test('CIP-07: a stored secret\'s raw ciphertext copied from the SQLite file is refused by decrypt', async () => {
  await pilot.putSecret('cip07/row', { canary: 'CIP07-canary-value' });
  const rows = storedRows();
  assert.ok(rows.length >= 1);
  for (const { value } of rows) {
    // D8 envelope: 0x01 ‖ keyId(4) ‖ nonce(12) ‖ ct ‖ tag. Try every plausible reading.
    const nonce = value.subarray(5, 17);
    const sealed = value.subarray(17);
    const j = await apiError(pilot.decrypt({ version: 1, nonce, ciphertext: sealed }));
    assert.equal(j.status, 400);
    assert.equal(j.wireErr, 'api_bad_request');
    const s1 = await apiError(pilot.decryptStream(Buffer.concat([Buffer.from([1]), nonce, sealed])));
    assert.equal(s1.wireErr, 'decryption_failed');
    const s2 = await apiError(pilot.decryptStream(Buffer.from(value)));
    assert.equal(s2.status, 400);
  }
});

test('CIP-08: stored rows and cipher-API ciphertexts sent to bootstrap verify are no hash oracle: one refusal, never a hash', async () => {
  await pilot.putSecret('cip08/row', { canary: 'CIP08-canary-value' });
  const rows = storedRows();
  const probes: Array<{ nonce: Buffer; ciphertext: Buffer }> = rows.map(({ value }) => ({ nonce: value.subarray(5, 17), ciphertext: value.subarray(17) }));
  const ct = await pilot.encrypt(Buffer.from('CIP08-cipher-canary'));
  probes.push({ nonce: Buffer.from(ct.nonce), ciphertext: Buffer.from(ct.ciphertext) });
  const boot = await rawClient(stack, 'bootstrap');
  try {
    for (const p of probes) {
      const r = await boot.post('/v1/bootstrap/verify', { nonce: p.nonce.toString('base64'), ciphertext: p.ciphertext.toString('base64') });
      assert.equal(r.status, 500, r.body);
      assert.equal(r.body, '{"hash":"","err":"api_internal_error"}');
    }
  } finally {
    await boot.close();
  }
});

test('CIP-10: bad base64 is refused by the CLI before any call (the server schema is unit-tested)', async () => {
  for (const bad of ['!!!!', 'A', 'aGVsbG8_', 'aGVs bG8=']) {
    const r = await stack.spike(['cipher', 'decrypt', '--nonce', bad, '--ciphertext', 'aGVsbG8=']);
    assert.notEqual(r.code, 0, bad);
  }
});

test('CIP cli: spike cipher encrypt/decrypt with files (stream, chunked upload) and --plaintext (JSON)', async () => {
  const inFile = path.join(stack.dir, 'plain.bin');
  const encFile = path.join(stack.dir, 'plain.enc');
  const outFile = path.join(stack.dir, 'plain.out');
  const pt = randomBytes(MiB + 7);
  fs.writeFileSync(inFile, pt);
  let r = await stack.spike(['cipher', 'encrypt', '-f', inFile, '-o', encFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.statSync(encFile).size, pt.length + 29);
  r = await stack.spike(['cipher', 'decrypt', '-f', encFile, '-o', outFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.readFileSync(outFile).equals(pt), true);
  // JSON mode writes the full envelope (gaps B5 fixed), so it decrypts later.
  r = await stack.spike(['cipher', 'encrypt', '--plaintext', Buffer.from('hello json').toString('base64'), '-o', encFile]);
  assert.equal(r.code, 0, r.stderr);
  r = await stack.spike(['cipher', 'decrypt', '-f', encFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello json');
  // Tampered file → non-zero exit, nothing on stdout.
  const enc = fs.readFileSync(encFile);
  enc[enc.length - 1]! ^= 1;
  fs.writeFileSync(encFile, enc);
  r = await stack.spike(['cipher', 'decrypt', '-f', encFile]);
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, '');
});

test('CIP-12: no permission → 401; `execute` on the cipher gate works; `read` does not; Lite always', async () => {
  await pilot.putPolicy({
    name: 'cipher-exec',
    spiffeIdPattern: '^spiffe://spike\\.ist/workload/app-exec$',
    pathPattern: '^spike/system/cipher/exec$',
    permissions: ['execute'],
  });
  await pilot.putPolicy({
    name: 'cipher-read-only',
    spiffeIdPattern: '^spiffe://spike\\.ist/workload/app-read$',
    pathPattern: '^spike/system/cipher/exec$',
    permissions: ['read'],
  });
  const pt = Buffer.from('permission check');
  const ct = await pilot.encrypt(pt);
  const sct = await drain(await pilot.encryptStream(pt));
  for (const name of ['app-none', 'app-read']) {
    const c = await stack.client(name);
    // Started one at a time: a promise created early could reject before anything awaits
    // it (an unhandled rejection that fails the run).
    for (const call of [() => c.encrypt(pt), () => c.decrypt(ct), () => c.encryptStream(pt), () => c.decryptStream(sct)]) {
      const e = await apiError(call());
      assert.equal(e.status, 401, name);
      assert.equal(e.code, 'access_unauthorized');
    }
  }
  for (const name of ['app-exec', 'lite']) {
    const c = await stack.client(name);
    assert.equal(Buffer.from(await c.decrypt(await c.encrypt(pt))).equals(pt), true, name);
    assert.equal(Buffer.from(await c.decrypt(ct)).equals(pt), true, name);
    assert.equal((await drain(await c.decryptStream(await drain(await c.encryptStream(pt))))).equals(pt), true, name);
    assert.equal((await drain(await c.decryptStream(sct))).equals(pt), true, name);
  }
  // Recover / restore roles are ordinary workloads here (no policy → refused).
  const rec = await stack.client('recover');
  assert.equal((await apiError(rec.encrypt(pt))).status, 401);
});

test('CIP logs: no plaintext or key material reaches any log line', () => {
  const logs = stack.logs();
  assert.equal(logs.includes('attack at dawn'), false);
  assert.equal(logs.includes('permission check'), false);
  assert.equal(logs.includes('CIP07-canary-value'), false);
  assert.equal(logs.includes(Buffer.from('attack at dawn').toString('base64')), false);
});
