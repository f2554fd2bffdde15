/**
 * Hostile cipher input through the real router, guards and cipher routes (in-process plain
 * HTTP; the same over real mTLS: test/e2e/cipher-api.test.ts), in both modes — JSON and
 * `application/octet-stream`:
 *   CIP-03  a version byte other than a held key generation (0x00, 0x02, 0xFF) → 400:
 *           JSON `api_bad_request` "unsupported ciphertext version", stream text
 *           `crypto_unsupported_version` (SPIKE's code);
 *   CIP-04  empty body, version byte only, ciphertext shorter than the 16-byte tag → 400;
 *   CIP-06  a plaintext over max − 16 (JSON) or over the stream cap → 400 (SPIKE's status for
 *           oversize, D1: not the catalogue's 413), while the largest accepted plaintext
 *           yields a ciphertext that the same Nexus decrypts.
 * No answer echoes the submitted bytes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { type HarnessReply, type RouteHarness, startRouteHarness } from '../../../test/helpers/route-harness.js';
import { cipherRoutes } from './cipher.js';

const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const ENC = '/v1/cipher/encrypt';
const DEC = '/v1/cipher/decrypt';
/** Small caps so the boundary cases are cheap. */
const MAX_CT = 1024;
const MAX_STREAM = 4096;
const STREAM = { 'content-type': 'application/octet-stream' };

let h: RouteHarness;

before(async () => {
  h = await startRouteHarness({
    modules: [cipherRoutes],
    env: { SPIKE_NEXUS_CRYPTO_MAX_CIPHERTEXT_SIZE: String(MAX_CT), SPIKE_NEXUS_CRYPTO_MAX_STREAM_SIZE: String(MAX_STREAM) },
  });
});

after(async () => {
  await h.close();
});

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
interface BytesReply { status: number; body: Buffer; text: string }

/** A stream-mode POST whose answer is kept as bytes (the harness decodes bodies as UTF-8). */
function stream(path: string, body: Buffer): Promise<BytesReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: h.port, path, method: 'POST', agent: false,
      headers: { ...STREAM, 'content-length': String(body.length), 'x-test-peer': PILOT },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const all = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, body: all, text: all.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function sealJson(pt: Buffer): Promise<{ version: number; nonce: string; ciphertext: string }> {
  const r = await h.post(ENC, { plaintext: b64(pt) }, PILOT);
  assert.equal(r.status, 200, r.body);
  return r.json as { version: number; nonce: string; ciphertext: string };
}

function assertJsonRefusal(r: HarnessReply, message: string, label: string): void {
  assert.equal(r.status, 400, `${label}: ${r.body}`);
  assert.deepEqual(r.json, { plaintext: null, err: 'api_bad_request', message }, label);
}

test('CIP-03: version 0x00, 0x02, 0xFF → 400 unsupported version in JSON and stream mode; version 1 still opens', async () => {
  const pt = randomBytes(40);
  const ct = await sealJson(pt);
  assert.equal(ct.version, 1);
  for (const version of [0, 2, 255]) {
    const r = await h.post(DEC, { ...ct, version }, PILOT);
    assertJsonRefusal(r, 'unsupported ciphertext version', `JSON version ${version}`);
    assert.ok(!r.body.includes(ct.ciphertext) && !r.body.includes(ct.nonce), 'no echo');
  }
  // Out of the byte range: refused by the schema, same status.
  for (const version of [256, -1, 1.5, '1']) assert.equal((await h.post(DEC, { ...ct, version }, PILOT)).status, 400, String(version));

  const frame = (await stream(ENC, pt)).body;
  for (const v of [0x00, 0x02, 0xff]) {
    const body = Buffer.from(frame);
    body[0] = v;
    const r = await stream(DEC, body);
    assert.equal(r.status, 400, `stream version ${v}`);
    assert.equal(r.text, 'crypto_unsupported_version\n');
  }
  // Control: the untouched ciphertexts open (the refusals above were the version's doing).
  const ok = await h.post(DEC, ct, PILOT);
  assert.equal(ok.status, 200, ok.body);
  assert.equal((ok.json as { plaintext: string }).plaintext, b64(pt));
});

test('CIP-04: empty body, version only, ciphertext shorter than the tag → 400 in JSON and stream mode', async () => {
  const ct = await sealJson(randomBytes(8));
  // JSON mode: an empty body, an empty object, the version alone, a short ciphertext.
  const empty = await h.post(DEC, Buffer.alloc(0), PILOT);
  assert.equal(empty.status, 400, empty.body);
  assert.equal((empty.json as { err: string }).err, 'api_bad_request');
  assertJsonRefusal(await h.post(DEC, {}, PILOT), 'unsupported ciphertext version', '{}');
  assertJsonRefusal(await h.post(DEC, { version: 1 }, PILOT), 'nonce must be 12 bytes', 'version only');
  for (const n of [0, 1, 15]) {
    const short = b64(Buffer.from(ct.ciphertext, 'base64').subarray(0, n));
    assertJsonRefusal(await h.post(DEC, { ...ct, ciphertext: short }, PILOT), 'decryption failed', `${n}-byte ciphertext`);
  }
  // Stream mode: SPIKE's framing codes, then the tag check.
  const nonce = randomBytes(12);
  for (const [body, text] of [
    [Buffer.alloc(0), 'crypto_failed_to_read_version'],
    [Buffer.from([1]), 'crypto_failed_to_read_nonce'],
    [Buffer.concat([Buffer.from([1]), nonce]), 'decryption failed'],
    [Buffer.concat([Buffer.from([1]), nonce, randomBytes(15)]), 'decryption failed'],
  ] as Array<[Buffer, string]>) {
    const r = await stream(DEC, body);
    assert.equal(r.status, 400, `${body.length}-byte stream body`);
    assert.equal(r.text, `${text}\n`);
  }
});

test('CIP-06: JSON plaintext of max − 16 bytes is sealed and opens again; one byte more → 400 "plaintext too large"', async () => {
  const largest = randomBytes(MAX_CT - 16);
  const ct = await sealJson(largest);
  assert.equal(Buffer.from(ct.ciphertext, 'base64').length, MAX_CT, 'the largest ciphertext is exactly the decrypt limit');
  const back = await h.post(DEC, ct, PILOT);
  assert.equal(back.status, 200, back.body);
  assert.equal((back.json as { plaintext: string }).plaintext, b64(largest));

  const over = randomBytes(MAX_CT - 15);
  const r = await h.post(ENC, { plaintext: b64(over) }, PILOT);
  assert.equal(r.status, 400, r.body);
  assert.deepEqual(r.json, { version: 0, nonce: null, ciphertext: null, err: 'api_bad_request', message: 'plaintext too large' });
  // Decrypt of a ciphertext over the limit: the same status.
  const big = await h.post(DEC, { ...ct, ciphertext: b64(randomBytes(MAX_CT + 1)) }, PILOT);
  assertJsonRefusal(big, 'ciphertext too large', 'ciphertext over the limit');
});

test('CIP-06 (stream): a plaintext at the stream cap is sealed and its ciphertext (cap + 29) opens; one byte over → 400', async () => {
  const largest = randomBytes(MAX_STREAM);
  const sealed = await stream(ENC, largest);
  assert.equal(sealed.status, 200);
  const frame = sealed.body;
  assert.equal(frame.length, MAX_STREAM + 29);
  const back = await stream(DEC, frame);
  assert.equal(back.status, 200);
  assert.ok(back.body.equals(largest), 'round trip at the cap');

  const over = await stream(ENC, randomBytes(MAX_STREAM + 1));
  assert.equal(over.status, 400, over.text);
  assert.equal((JSON.parse(over.text) as { err: string }).err, 'api_bad_request');
  const overDec = await stream(DEC, Buffer.concat([frame, Buffer.from([0])]));
  assert.equal(overDec.status, 400);
});
