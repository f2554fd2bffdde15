/**
 * ATTACK: pinning Nexus memory with stream decrypts whose reply is never read.
 *
 * Reproduction (before the cipher memory budget): a stream decrypt (`POST /v1/cipher/decrypt`,
 * `Content-Type: application/octet-stream`) buffers the whole ciphertext (up to 64 MiB), checks
 * the GCM tag, then streams the plaintext out and keeps the ciphertext until the last reply
 * chunk is written. A client that uploads a valid ciphertext and then never reads its socket
 * stalls the reply after the kernel buffers fill (a few MiB), so Nexus holds the ciphertext for
 * as long as the connection stays open. Twelve such connections pinned ~800 MiB of Nexus
 * memory. Here eight raw mTLS connections (a real `spike-nexus` child, a valid Pilot SVID) each
 * upload a 24 MiB ciphertext and stop reading after the response head: without a budget all
 * eight are admitted and Nexus RSS grows by ~190 MiB.
 *
 * With `SPIKE_NEXUS_CIPHER_MEMORY_BUDGET_BYTES` = 56 MiB, at most two 24 MiB decrypts fit; the
 * others are refused before their body is read (503 `state_not_ready`, message naming the
 * budget), Nexus RSS stays within the budget plus a generous margin (GC slack on a loaded
 * machine), a small decrypt still works during the attack, and once the hogs hang up the whole
 * budget is free again (two full-size decrypts at once succeed). A second case aborts uploads
 * half-way and checks the same.
 */
import fs from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Stack } from '../helpers/stack.js';
import type { NexusClient } from '../../src/sdk/index.js';
import { NexusApiError } from '../../src/sdk/errors.js';
import { WorkloadX509Source, svidChainPem, svidPrivateKeyPem } from '../../src/spiffe/index.js';

const MiB = 1024 * 1024;
/** Plaintext size of one hog's ciphertext: well above what loopback socket buffers absorb. */
const HOG_PLAINTEXT = 24 * MiB;
const HOGS = 8;
/** Two 24 MiB decrypts (ciphertext + one working chunk each) fit, a third does not. */
const BUDGET = 56 * MiB;
const MAX_ADMITTED = 2;
/** RSS growth allowed on top of the budget: GC slack for the bytes that streamed through. */
const RSS_MARGIN = 72 * MiB;
const DEADLINE_MS = 90_000;

let stack: Stack;
let pilot: NexusClient;
let source: WorkloadX509Source;
let ciphertext: Buffer;
let plaintextSha: string;
let port: number;

before(async () => {
  stack = await Stack.start({
    backend: 'memory',
    nexusEnv: { SPIKE_NEXUS_CIPHER_MEMORY_BUDGET_BYTES: String(BUDGET) },
  });
  pilot = await stack.client('pilot');
  source = await WorkloadX509Source.open({ endpoint: stack.socket('pilot'), timeoutMs: 15_000 });
  port = Number(new URL(stack.nexusUrl).port);
  const pt = randomBytes(HOG_PLAINTEXT);
  plaintextSha = sha(pt);
  ciphertext = await drain(await pilot.encryptStream(pt));
  assert.equal(ciphertext.length, HOG_PLAINTEXT + 29);
});

after(async () => {
  source?.close();
  await stack?.stop();
});

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function drain(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function rssBytes(): number {
  const pid = stack.nexusProcess()?.pid;
  assert.ok(pid !== undefined);
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS not found');
  return Number(m[1]) * 1024;
}

/** Samples Nexus RSS every 25 ms; `stop()` returns the peak seen. */
function rssPeak(): { stop(): number } {
  let peak = rssBytes();
  const t = setInterval(() => { peak = Math.max(peak, rssBytes()); }, 25);
  return { stop: () => { clearInterval(t); return Math.max(peak, rssBytes()); } };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Answer {
  status: number;
  /** The JSON error body of a refused request (undefined for 200). */
  body: Record<string, unknown> | undefined;
}

/**
 * A raw mTLS connection (Pilot's SVID) that POSTs a stream decrypt and reads only the
 * response head: on 200 it pauses the socket for good (never reads the plaintext); a refusal
 * is read to the end so its body can be checked. `sendBytes` < the body length uploads only
 * that much (the rest never comes).
 */
function hog(body: Buffer, sendBytes = body.length): { answer: Promise<Answer>; destroy(): void } {
  const svid = source.getX509Svid();
  const key = svidPrivateKeyPem(svid);
  const sock = tls.connect({
    host: '127.0.0.1',
    port,
    cert: svidChainPem(svid),
    key,
    rejectUnauthorized: false,
    servername: 'localhost',
    ALPNProtocols: ['http/1.1'],
  });
  key.fill(0);
  sock.on('error', () => undefined); // refused uploads see EPIPE/ECONNRESET: expected
  sock.on('secureConnect', () => {
    sock.write(
      'POST /v1/cipher/decrypt HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n'
      + `Content-Length: ${body.length}\r\n\r\n`,
    );
    sock.write(body.subarray(0, sendBytes));
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    let got = Buffer.alloc(0);
    let status: number | undefined;
    let need = -1;
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      const end = got.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = got.subarray(0, end).toString('latin1');
      status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      if (status === 200) {
        sock.pause(); // never read the reply
        sock.off('data', onData);
        resolve({ status, body: undefined });
        return;
      }
      need = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? -1);
      if (need >= 0 && got.length - end - 4 >= need) {
        sock.off('data', onData);
        const text = got.subarray(end + 4, end + 4 + need).toString('utf8');
        resolve({ status, body: JSON.parse(text) as Record<string, unknown> });
      }
    };
    sock.on('data', onData);
    sock.on('close', () => reject(new Error(`connection closed before an answer (status ${status ?? 'none'})`)));
  });
  answer.catch(() => undefined);
  return { answer, destroy: () => sock.destroy() };
}

/** A full-size decrypt by a well-behaved client; undefined when refused as busy. */
async function fullDecrypt(): Promise<true | undefined> {
  try {
    const out = await drain(await pilot.decryptStream(ciphertext));
    assert.equal(sha(out), plaintextSha);
    return true;
  } catch (e) {
    if (e instanceof NexusApiError && e.status === 503) return undefined;
    throw e;
  }
}

/** Polls until two full-size decrypts at once succeed: the whole budget is free again. */
async function budgetFullyAvailable(): Promise<void> {
  await until('the whole cipher budget to be free again', async () => {
    const both = await Promise.all([fullDecrypt(), fullDecrypt()]);
    return both.every((x) => x === true) ? true : undefined;
  });
}

function assertBusy(a: Answer): void {
  assert.equal(a.status, 503);
  assert.equal(a.body?.['err'], 'state_not_ready');
  assert.equal(a.body?.['message'], 'cipher memory budget exhausted, try again later');
}

test('ATTACK decrypt memory pinning: many non-reading clients cannot make Nexus hold more than the budget', async () => {
  // Warm up the decrypt path (JIT, TLS, heap) before the baseline.
  assert.equal(await fullDecrypt(), true);
  const baseline = rssBytes();
  const peak = rssPeak();
  const hogs = Array.from({ length: HOGS }, () => hog(ciphertext));
  let peakBytes: number;
  try {
    const answers = await Promise.race([
      Promise.all(hogs.map((h) => h.answer)),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('hogs got no answer in time')), DEADLINE_MS).unref()),
    ]);
    const admitted = answers.filter((a) => a.status === 200).length;
    const refused = answers.filter((a) => a.status !== 200);
    peakBytes = peak.stop();
    const growth = peakBytes - baseline;
    console.log(`# RSS baseline ${(baseline / MiB).toFixed(0)} MiB, peak +${(growth / MiB).toFixed(0)} MiB; admitted ${admitted}/${HOGS}`);
    assert.ok(
      growth < BUDGET + RSS_MARGIN,
      `Nexus RSS grew by ${(growth / MiB).toFixed(0)} MiB (budget ${BUDGET / MiB} MiB, margin ${RSS_MARGIN / MiB} MiB); `
      + `${admitted} of ${HOGS} non-reading decrypts were admitted`,
    );
    assert.ok(admitted >= 1 && admitted <= MAX_ADMITTED, `${admitted} of ${HOGS} admitted (at most ${MAX_ADMITTED} fit the budget)`);
    assert.equal(refused.length, HOGS - admitted);
    for (const a of refused) assertBusy(a);
    // While the admitted hogs hold their share, a small decrypt still goes through …
    const small = await pilot.encryptStream(randomBytes(MiB)).then(drain);
    assert.equal((await drain(await pilot.decryptStream(small))).length, MiB);
    // … and a full-size one is refused as busy, not queued.
    assert.equal(await fullDecrypt(), undefined);
  } finally {
    peak.stop();
    for (const h of hogs) h.destroy();
  }
  // Once the hogs hang up, every reserved byte comes back.
  await budgetFullyAvailable();
});

test('ATTACK decrypt memory pinning: uploads aborted half-way give their budget back', async () => {
  const half = Math.floor(ciphertext.length / 2);
  const hogs = [hog(ciphertext, half), hog(ciphertext, half)];
  try {
    // The half-uploads hold their reservation (declared length): a full-size decrypt is busy.
    await until('the stalled uploads to hold the budget', async () => ((await fullDecrypt()) === undefined ? true : undefined));
  } finally {
    for (const h of hogs) h.destroy();
  }
  await budgetFullyAvailable();
});
