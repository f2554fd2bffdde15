/**
 * FI-08 for stream bodies: the minimum body pace (body-pace.ts) over a real HTTP server on
 * port 0 and raw TCP clients that control exactly when each byte goes out. The pace is
 * shortened for the test (200 ms windows, 2,000 bytes/s); the trickle sends 50 bytes/s, the
 * good sender ~100,000 bytes/s, so load on the machine cannot move either across the line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../lib/log.js';
import { SpiffeId } from '../spiffe/id.js';
import { ERR } from '../protocol/errors.js';
import { type BodyPace, DEFAULT_STREAM_BODY_PACE, PaceWatch } from './body-pace.js';
import { guardIdentity } from './guards.js';
import type { StreamReply } from './reply.js';
import { defineRoute } from './route.js';
import { createRouter } from './router.js';
import { s } from './schema.js';
import { type Dripped, drip } from '../../test/helpers/drip.js';
import { serveRouter, type RouterServer } from '../../test/helpers/router-server.js';

const PACE: BodyPace = { windowMs: 200, minBytesPerSecond: 2_000 };
const peer = SpiffeId.parse('spiffe://spike.ist/app/x');
const allow = guardIdentity('test.allow', () => true);
let completed = 0;
/** Resolves the gate of the next `/pause` request; set once it got its first chunk. */
let openGate: (() => void) | undefined;
let gateReached: (() => void) | undefined;

async function* once(b: Buffer): AsyncGenerator<Uint8Array> {
  yield b;
}

const routes = [
  // Reads the whole body chunk by chunk, then answers its length (decrypt-like).
  defineRoute({
    path: '/collect', body: s.empty(), guard: allow, handle: () => ({}),
    stream: {
      guard: allow, maxBodyBytes: 1024 * 1024,
      handle: async (ctx): Promise<StreamReply> => {
        let n = 0;
        for await (const c of ctx.body()) n += c.length;
        completed++;
        return { kind: 'stream', chunks: once(Buffer.from(`got ${n}`)) };
      },
    },
  }),
  // Reads the whole body at once (readBody): the same pace applies.
  defineRoute({
    path: '/whole', body: s.empty(), guard: allow, handle: () => ({}),
    stream: {
      guard: allow, maxBodyBytes: 1024 * 1024,
      handle: async (ctx): Promise<Uint8Array> => {
        const b = await ctx.readBody();
        completed++;
        return Buffer.from(`got ${b.length}`);
      },
    },
  }),
  // Takes the first chunk, then stops reading until the test opens the gate (a consumer held
  // back, like a stream encrypt whose reply the client reads slowly), then reads the rest.
  defineRoute({
    path: '/pause', body: s.empty(), guard: allow, handle: () => ({}),
    stream: {
      guard: allow, maxBodyBytes: 1024 * 1024,
      handle: async (ctx): Promise<StreamReply> => {
        const it = ctx.body()[Symbol.asyncIterator]();
        let n = 0;
        let r = await it.next();
        const gate = new Promise<void>((resolve) => {
          openGate = resolve;
        });
        gateReached?.();
        await gate;
        for (; r.done !== true; r = await it.next()) n += r.value.length;
        completed++;
        return { kind: 'stream', chunks: once(Buffer.from(`got ${n}`)) };
      },
    },
  }),
];

const sink = new Writable({ write: (_c, _e, cb) => cb() });
const router = createRouter(routes, { isReady: () => true, logger: createLogger({ component: 'body-pace-test', destination: sink }), streamBodyPace: PACE });
let server: RouterServer;

before(async () => {
  server = await serveRouter(router, peer);
});

after(() => server.close());

/**
 * An octet-stream POST declaring `length` bytes (`Connection: close`), its body sent `step`
 * bytes every `everyMs`. Resolves when the server closes the connection.
 */
function send(path: string, length: number, step: number, everyMs: number): Promise<Dripped> {
  const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`;
  return drip(net.connect(server.port, '127.0.0.1'), 'connect', { head, body: Buffer.alloc(length, 0x41), step, everyMs });
}

const TOO_SLOW = { err: ERR.badRequest, message: 'request body too slow' };

function assertTooSlow(r: Dripped, length: number): void {
  assert.match(r.answer, /^HTTP\/1\.1 408 /, r.answer.slice(0, 80));
  assert.match(r.answer, /\r\nConnection: close\r\n/i);
  assert.deepEqual(JSON.parse(r.answer.slice(r.answer.indexOf('\r\n\r\n') + 4)), TOO_SLOW);
  assert.ok(r.bytesSent < length, 'the whole body was sent: nothing was cut');
  // Never before half a window of waiting has been judged.
  assert.ok(r.answeredAfterMs >= PACE.windowMs / 2, `answered after ${r.answeredAfterMs.toFixed(0)} ms`);
}

test('FI-08: a stream body trickled at 50 bytes/s (chunk by chunk reader) → 408 "request body too slow", connection closed, handler never completes', async () => {
  const before = completed;
  const r = await send('/collect', 10_000, 1, 20);
  assertTooSlow(r, 10_000);
  assert.equal(completed, before);
});

test('FI-08: the same through readBody() (whole-body reader of a stream route)', async () => {
  const before = completed;
  const r = await send('/whole', 10_000, 1, 20);
  assertTooSlow(r, 10_000);
  assert.equal(completed, before);
});

test('FI-08: a body sent steadily above the pace over many windows is read whole (200)', async () => {
  const length = 2048 * 60; // ~1.2 s at 2 KiB per 20 ms: six windows
  const r = await send('/collect', length, 2048, 20);
  assert.match(r.answer, /^HTTP\/1\.1 200 /, r.answer.slice(0, 80));
  assert.ok(r.answer.includes(`\r\ngot ${length}\r\n`), r.answer.slice(-40));
});

test('FI-08: time the handler spends not reading (back-pressure) does not count against the sender', async () => {
  const reached = new Promise<void>((resolve) => {
    gateReached = resolve;
  });
  const before = completed;
  const length = 64 * 1024;
  // The whole body goes out at once: the server takes the first chunk, then reads nothing for
  // five windows with the rest waiting in its buffers. Judged by the wall clock, those windows
  // brought no bytes and the request would be cut; judged by waiting time they are not counted.
  const pending = send('/pause', length, length, 1);
  await reached;
  gateReached = undefined;
  await new Promise((r) => setTimeout(r, PACE.windowMs * 5));
  openGate?.();
  const r = await pending;
  assert.match(r.answer, /^HTTP\/1\.1 200 /, r.answer.slice(0, 80));
  assert.ok(r.answer.includes(`\r\ngot ${length}\r\n`), r.answer.slice(-40));
  assert.equal(completed, before + 1);
});

test('PaceWatch: judges only after half a window of waiting, and in proportion to the waiting time', async () => {
  let fired = 0;
  const w = new PaceWatch({ windowMs: 40, minBytesPerSecond: 1_000 }, () => fired++);
  try {
    // Never waiting: every judgement carries over, nothing fires however long it runs.
    const ticks = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 40));
    };
    await ticks(4);
    assert.equal(fired, 0);
    // Waiting with nothing arriving: fires at a judgement.
    w.waiting();
    for (let i = 0; i < 100 && fired === 0; i++) await ticks(1);
    assert.equal(fired, 1);
  } finally {
    w.stop();
  }
});

test('the default stream body pace: 16 KiB/s over 10 s windows', () => {
  assert.deepEqual({ ...DEFAULT_STREAM_BODY_PACE }, { windowMs: 10_000, minBytesPerSecond: 16 * 1024 });
  assert.throws(() => createRouter([], { isReady: () => true, logger: createLogger({ component: 'x', destination: sink }), streamBodyPace: { windowMs: 0, minBytesPerSecond: 1 } }), RangeError);
});
