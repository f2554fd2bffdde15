/**
 * The cipher routes' memory budget over the real router (in-process plain HTTP; the same
 * routes over real mTLS are exercised in test/e2e/cipher-api.test.ts and
 * test/e2e/attack-cipher-memory-pin.test.ts). Each case watches the budget itself: what a
 * request holds while in flight (a stream decrypt: only what has arrived; headers alone hold
 * nothing), the 503/400 refusals, the per-caller share, and that every byte comes back however
 * the request ends — reply read, decrypt failure, framing error, client abort mid-upload,
 * client gone mid-reply, the server destroying a stalled socket (what the socket inactivity
 * timeout does) and the reply deadline cutting a slow reader.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { PACKED_CHUNK_BYTES, createRouter } from '../../http/index.js';
import { SpiffeId } from '../../spiffe/id.js';
import { type RouteHarness, startRouteHarness } from '../../../test/helpers/route-harness.js';
import { ByteBudget, CIPHER_BUSY_MESSAGE } from './cipher-budget.js';
import { DECRYPT_CHUNK_BYTES } from './cipher-stream.js';
import { ENCRYPT_STREAM_RESERVE_BYTES, cipherRoutesWith, jsonReserveBytes } from './cipher.js';

const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const LITE = 'spiffe://spike.ist/spike/workload/role/lite';
const MiB = 1024 * 1024;
const BUDGET = 40 * MiB;
/** A reply this big cannot fit loopback socket buffers: a non-reading client stalls it. */
const BIG = 16 * MiB;

let h: RouteHarness;
let budget: ByteBudget;
/** Behind `x-test-router: share`: the same budget size, one caller may hold at most 20 MiB. */
let shareBudget: ByteBudget;
/** Behind `x-test-router: slow`: replies must be delivered within 200 ms. */
let slowBudget: ByteBudget;
let server: http.Server;
let port: number;
const serverSockets = new Set<net.Socket>();
let bigCt: Buffer;

before(async () => {
  h = await startRouteHarness({ modules: [] });
  budget = new ByteBudget(BUDGET);
  shareBudget = new ByteBudget(BUDGET, { perCaller: 20 * MiB });
  slowBudget = new ByteBudget(BUDGET);
  const opts = { isReady: () => true, logger: h.ctx.logger };
  const routers = {
    main: createRouter(cipherRoutesWith(h.ctx, budget), opts),
    share: createRouter(cipherRoutesWith(h.ctx, shareBudget), opts),
    slow: createRouter(cipherRoutesWith(h.ctx, slowBudget, { replyDeadline: { minMs: 200, bytesPerSecond: 1024 * MiB } }), opts),
  };
  server = http.createServer((req, res) => {
    const who = req.headers['x-test-peer'];
    const which = req.headers['x-test-router'];
    const router = which === 'share' ? routers.share : which === 'slow' ? routers.slow : routers.main;
    void router(req, res, typeof who === 'string' ? SpiffeId.parse(who) : null);
  });
  server.on('connection', (s: net.Socket) => {
    serverSockets.add(s);
    s.once('close', () => serverSockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  bigCt = (await post('/v1/cipher/encrypt', randomBytes(BIG))).body;
  assert.equal(bigCt.length, BIG + 29);
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await h.close();
});

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > deadline) {
      assert.fail(`timed out waiting for ${what} (budget used: ${budget.used}, share: ${shareBudget.used}, slow: ${slowBudget.used})`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

const idle = (): Promise<void> => until('the budget to be fully free', () => budget.used === 0);

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

/** A well-behaved client: sends everything, reads everything. */
function post(path: string, body: Buffer | object, opts: { chunked?: boolean; peer?: string; router?: string } = {}): Promise<Reply> {
  const json = !Buffer.isBuffer(body);
  const payload = json ? Buffer.from(JSON.stringify(body)) : body;
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path, method: 'POST', agent: false,
      headers: {
        'content-type': json ? 'application/json' : 'application/octet-stream',
        'x-test-peer': opts.peer ?? PILOT,
        ...(opts.router !== undefined ? { 'x-test-router': opts.router } : {}),
        ...(opts.chunked === true ? {} : { 'content-length': String(payload.length) }),
      },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

interface Raw {
  /** The response status line's code, once the head arrived (the reply is then never read). */
  readonly status: Promise<number>;
  readonly socket: net.Socket;
}

/**
 * A raw client: sends the head and `send` (not necessarily the whole declared body), reads
 * the response head and then stops reading for good.
 */
function raw(path: string, send: Buffer, headers: Record<string, string>): Raw {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const head = Object.entries({ host: 'x', 'content-type': 'application/octet-stream', 'x-test-peer': PILOT, ...headers })
    .map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n`);
  if (send.length > 0) socket.write(send);
  const status = new Promise<number>((resolve) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (m === null || !got.includes('\r\n\r\n')) return;
      socket.pause();
      socket.off('data', onData);
      resolve(Number(m[1]));
    };
    socket.on('data', onData);
    socket.on('close', () => resolve(0));
  });
  return { status, socket };
}

/** Sends a head only (no body) and reads the answer to the connection's close. */
async function headOnly(path: string, headers: Record<string, string>): Promise<{ status: number; head: string; body: string }> {
  const r = raw(path, Buffer.alloc(0), headers);
  const parts: Buffer[] = [];
  r.socket.on('data', (d: Buffer) => parts.push(d));
  const status = await r.status;
  r.socket.resume();
  await new Promise((resolve) => r.socket.once('close', resolve));
  const text = Buffer.concat(parts).toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  return { status, head: text.slice(0, end), body: text.slice(end + 4) };
}

/** Writes `bytes` as HTTP/1.1 chunks on a raw socket. */
function chunk(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')]);
}

test('stream decrypt: holds ciphertext + one chunk while the reply is unread; the reply read → all back', async () => {
  const r = raw('/v1/cipher/decrypt', bigCt, { 'content-length': String(bigCt.length) });
  assert.equal(await r.status, 200);
  assert.equal(budget.used, bigCt.length + DECRYPT_CHUNK_BYTES);
  // The client starts reading again: the reply completes and the reservation goes back.
  r.socket.resume();
  await idle();
  r.socket.destroy();
  const ok = await post('/v1/cipher/decrypt', bigCt);
  assert.equal(ok.status, 200);
  assert.equal(ok.body.length, BIG);
  await idle();
});

test('stream decrypt: a stalled reply whose socket the server destroys (inactivity timeout) gives its budget back', async () => {
  const r = raw('/v1/cipher/decrypt', bigCt, { 'content-length': String(bigCt.length) });
  assert.equal(await r.status, 200);
  assert.equal(budget.used, bigCt.length + DECRYPT_CHUNK_BYTES);
  for (const s of serverSockets) s.destroy();
  await idle();
  r.socket.destroy();
});

test('stream decrypt: a stalled reply whose client hangs up gives its budget back', async () => {
  const r = raw('/v1/cipher/decrypt', bigCt, { 'content-length': String(bigCt.length) });
  assert.equal(await r.status, 200);
  r.socket.destroy();
  await idle();
});

test('stream decrypt: over budget → 503 state_not_ready as the body outgrows it; too big for the whole budget → 400 before reading', async () => {
  const hogs = [raw('/v1/cipher/decrypt', bigCt, { 'content-length': String(bigCt.length) }), raw('/v1/cipher/decrypt', bigCt, { 'content-length': String(bigCt.length) })];
  try {
    assert.deepEqual(await Promise.all(hogs.map((x) => x.status)), [200, 200]);
    const held = budget.used;
    assert.equal(held, 2 * (bigCt.length + DECRYPT_CHUNK_BYTES));
    // A third full-size body does not fit what is left: refused once it outgrows it.
    const third = raw('/v1/cipher/decrypt', bigCt, { 'content-length': String(bigCt.length) });
    const parts: Buffer[] = [];
    third.socket.on('data', (d: Buffer) => parts.push(d));
    assert.equal(await third.status, 503);
    third.socket.resume();
    await new Promise((resolve) => third.socket.once('close', resolve));
    const text = Buffer.concat(parts).toString('utf8');
    assert.match(text, /\r\nconnection: close/i);
    assert.deepEqual(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)), { plaintext: null, err: 'state_not_ready', message: CIPHER_BUSY_MESSAGE });
    await until('the refused body to be released', () => budget.used === held);
  } finally {
    for (const x of hogs) x.socket.destroy();
  }
  await idle();
  // Could never fit (declared + working chunk > the whole budget): 400 "too large", not "retry".
  const tooBig = await headOnly('/v1/cipher/decrypt', { 'content-length': String(BUDGET - DECRYPT_CHUNK_BYTES + 1) });
  assert.equal(tooBig.status, 400);
  assert.equal((JSON.parse(tooBig.body) as { message: string }).message, 'request body too large');
  await idle();
});

test('stream decrypt: headers alone hold no budget — many header-only full-size decrypts, and a full decrypt still goes through', async () => {
  // `Expect: 100-continue`: Node writes the 100 and runs the handler in the same tick, so once
  // the 100 is here the request was admitted and is waiting for its body.
  const waiting = Array.from({ length: 8 }, () => raw('/v1/cipher/decrypt', Buffer.alloc(0), {
    'content-length': String(bigCt.length), expect: '100-continue',
  }));
  try {
    assert.deepEqual(await Promise.all(waiting.map((x) => x.status)), waiting.map(() => 100));
    assert.equal(budget.used, 0); // eight declared 16 MiB bodies (> the 40 MiB budget) hold nothing
    const ok = await post('/v1/cipher/decrypt', bigCt);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.length, BIG);
  } finally {
    for (const x of waiting) x.socket.destroy();
  }
  await idle();
});

test('stream decrypt: the reservation grows with the bytes that arrived, and an abort mid-upload gives it back (declared length and chunked)', async () => {
  const half = bigCt.subarray(0, bigCt.length >> 1);
  const declared = raw('/v1/cipher/decrypt', half, { 'content-length': String(bigCt.length) });
  // The reservation grows with the bytes that arrived, not with the declared length.
  // What arrived is reserved as it is handed on: all of it, but for up to PACKED_CHUNK_BYTES of
  // small pieces (TLS record tails) that wait in the reader's pack for more.
  const grown = (): boolean => budget.used > half.length - PACKED_CHUNK_BYTES && budget.used <= half.length;
  await until('the reservation to grow to what arrived', grown);
  assert.ok(budget.used < bigCt.length, 'only what arrived is reserved');
  declared.socket.destroy();
  await idle();
  // Chunked: the reservation grows with what arrived.
  const chunked = raw('/v1/cipher/decrypt', chunk(half), { 'transfer-encoding': 'chunked' });
  await until('the chunked reservation to grow', grown);
  assert.ok(budget.used < bigCt.length, 'only what arrived is reserved');
  chunked.socket.destroy();
  await idle();
});

test('stream decrypt: a chunked body that outgrows the free budget is refused mid-upload (503) and released', async () => {
  const hold = budget.reserve(BUDGET - (MiB + DECRYPT_CHUNK_BYTES));
  try {
    const r = raw('/v1/cipher/decrypt', Buffer.concat([chunk(bigCt.subarray(0, 2 * MiB)), Buffer.from('0\r\n\r\n')]), { 'transfer-encoding': 'chunked' });
    assert.equal(await r.status, 503);
    r.socket.destroy();
    await until('the refused upload to be released', () => budget.used === hold.bytes);
  } finally {
    hold.release();
  }
  await idle();
  // The same kind of body within budget decrypts (the chunks are kept as they came).
  const ok = await post('/v1/cipher/decrypt', bigCt, { chunked: true });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.length, BIG);
  await idle();
});

test('stream decrypt: failed tag and framing errors give their budget back', async () => {
  const bad = Buffer.from(bigCt);
  bad[bad.length - 1]! ^= 1;
  const r = await post('/v1/cipher/decrypt', bad);
  assert.equal(r.status, 400);
  assert.equal(r.body.toString(), 'decryption failed\n');
  await idle();
  for (const [body, text] of [
    [Buffer.alloc(0), 'crypto_failed_to_read_version'],
    [Buffer.from([2, 1, 2, 3]), 'crypto_unsupported_version'],
    [Buffer.from([1, 1, 2]), 'crypto_failed_to_read_nonce'],
    [Buffer.concat([Buffer.from([1]), randomBytes(20)]), 'decryption failed'],
  ] as Array<[Buffer, string]>) {
    for (const chunked of [false, true]) {
      const x = await post('/v1/cipher/decrypt', body, { chunked });
      assert.equal(x.status, 400);
      assert.equal(x.body.toString(), `${text}\n`);
      await idle();
    }
  }
});

test('stream encrypt: holds a fixed reserve while in flight, refused when full, released on abort and on completion', async () => {
  // In flight (upload not finished): the fixed reserve is held; the client going away — right
  // after the reply started, or later — gives it back.
  for (const later of [false, true]) {
    const r = raw('/v1/cipher/encrypt', chunk(randomBytes(MiB)), { 'transfer-encoding': 'chunked' });
    assert.equal(await r.status, 200);
    assert.equal(budget.used, ENCRYPT_STREAM_RESERVE_BYTES);
    if (later) await new Promise((resolve) => setTimeout(resolve, 50)); // any moment must do
    r.socket.destroy();
    await idle();
  }
  // Full budget → 503.
  const hold = budget.reserve(budget.available - ENCRYPT_STREAM_RESERVE_BYTES + 1);
  try {
    const refused = await post('/v1/cipher/encrypt', randomBytes(1000));
    assert.equal(refused.status, 503);
    assert.equal(JSON.parse(refused.body.toString()).message, CIPHER_BUSY_MESSAGE);
  } finally {
    hold.release();
  }
  const ok = await post('/v1/cipher/encrypt', randomBytes(1000));
  assert.equal(ok.status, 200);
  assert.equal(ok.body.length, 1029);
  await idle();
});

test('JSON encrypt/decrypt: reserve while handled, 503 with the route\'s error shape when full, nothing kept after', async () => {
  const pt = randomBytes(1000);
  const enc = await post('/v1/cipher/encrypt', { plaintext: pt.toString('base64') });
  assert.equal(enc.status, 200);
  await idle();
  const ct = JSON.parse(enc.body.toString()) as { version: number; nonce: string; ciphertext: string };
  const dec = await post('/v1/cipher/decrypt', ct);
  assert.equal(dec.status, 200);
  assert.equal(Buffer.from((JSON.parse(dec.body.toString()) as { plaintext: string }).plaintext, 'base64').equals(pt), true);
  await idle();
  const bad = await post('/v1/cipher/decrypt', { ...ct, ciphertext: Buffer.alloc(40).toString('base64') });
  assert.equal(bad.status, 400);
  await idle();
  const hold = budget.reserve(budget.available - jsonReserveBytes(pt.length) + 1);
  try {
    const refused = await post('/v1/cipher/decrypt', ct);
    assert.equal(refused.status, 503);
    assert.deepEqual(JSON.parse(refused.body.toString()), { plaintext: null, err: 'state_not_ready', message: CIPHER_BUSY_MESSAGE });
    const refusedEnc = await post('/v1/cipher/encrypt', { plaintext: pt.toString('base64') });
    assert.equal(refusedEnc.status, 503);
    assert.equal((JSON.parse(refusedEnc.body.toString()) as { err: string }).err, 'state_not_ready');
  } finally {
    hold.release();
  }
  await idle();
});

test('stream decrypt: one caller is held to its share (503) while another caller still gets in', async () => {
  const share = { 'x-test-router': 'share' };
  const hog = raw('/v1/cipher/decrypt', bigCt, { 'content-length': String(bigCt.length), ...share });
  try {
    assert.equal(await hog.status, 200); // reply never read: PILOT holds 16 MiB + 29 + 64 KiB
    assert.equal(shareBudget.usedBy(PILOT), bigCt.length + DECRYPT_CHUNK_BYTES);
    // PILOT's next 6 MiB decrypt would take it past its 20 MiB share (the budget has 24 MiB free).
    const six = (await post('/v1/cipher/encrypt', randomBytes(6 * MiB))).body;
    const refused = await post('/v1/cipher/decrypt', six, { router: 'share' });
    assert.equal(refused.status, 503);
    assert.deepEqual(JSON.parse(refused.body.toString()), { plaintext: null, err: 'state_not_ready', message: CIPHER_BUSY_MESSAGE });
    await until('the refused decrypt to be released', () => shareBudget.usedBy(PILOT) === bigCt.length + DECRYPT_CHUNK_BYTES);
    // Another identity still gets in, with a full-size decrypt of its own.
    const ok = await post('/v1/cipher/decrypt', bigCt, { router: 'share', peer: LITE });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.length, BIG);
  } finally {
    hog.socket.destroy();
  }
  await until('the share budget to be free', () => shareBudget.used === 0 && shareBudget.usedBy(PILOT) === 0 && shareBudget.usedBy(LITE) === 0);
});

test('stream decrypt: a reply not read within its deadline is cut off and its budget released', async () => {
  const logsBefore = h.logs().length;
  const r = raw('/v1/cipher/decrypt', bigCt, { 'content-length': String(bigCt.length), 'x-test-router': 'slow' });
  assert.equal(await r.status, 200);
  // The client reads nothing more; the deadline (200 ms here) gives the bytes back anyway.
  await until('the slow reader\'s budget to be released', () => slowBudget.used === 0);
  assert.equal(r.socket.destroyed, false); // released while the connection is still open
  // Reading again: the reply stops short of the plaintext and the server closes the connection.
  let got = 0;
  r.socket.on('data', (d: Buffer) => { got += d.length; });
  r.socket.resume();
  await new Promise((resolve) => r.socket.once('close', resolve));
  assert.ok(got < BIG, `the cut reply delivered ${got} of ${BIG} bytes`);
  await until('the cut to be logged', () => /"reason":"reply_too_slow"/.test(h.logs().slice(logsBefore)));
  assert.equal(slowBudget.used, 0);
});
