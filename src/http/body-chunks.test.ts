/**
 * The chunk reader (`cappedChunks`) hands on the very buffers the HTTP layer made, so a
 * consumer that zeroes what it got zeroes every copy of the body: with several chunks already
 * buffered, `read()` on a paused stream would return them merged into a new buffer and leave
 * the originals unzeroed. Over a real server, with the request fully buffered before reading.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { ApiError } from '../protocol/errors.js';
import { SMALL_CHUNK, cappedChunks, readBody } from './body.js';

async function serveOne(pieces: Buffer[], fn: (req: http.IncomingMessage, pushed: Buffer[]) => Promise<void>): Promise<void> {
  let done!: Promise<void>;
  const srv = http.createServer((req, res) => {
    // Record every buffer the HTTP layer pushes (patched before any body byte is parsed).
    const pushed: Buffer[] = [];
    const push = req.push.bind(req);
    req.push = ((c: unknown, enc?: BufferEncoding) => {
      if (Buffer.isBuffer(c)) pushed.push(c);
      return push(c, enc);
    }) as typeof req.push;
    done = (async () => {
      // Until the whole request is buffered, or as much of it as the stream buffers before it
      // stops reading the socket (a body of many tiny chunks: it never completes unread).
      const deadline = Date.now() + 10_000;
      while (!req.complete && req.readableLength < req.readableHighWaterMark && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      try {
        await fn(req, pushed);
      } finally {
        res.end('ok');
      }
    })();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    await new Promise<void>((resolve, reject) => {
      const r = http.request({ port: (srv.address() as { port: number }).port, host: '127.0.0.1', method: 'POST', path: '/', headers: { connection: 'close', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      r.on('error', reject);
      for (const p of pieces) r.write(p);
      r.end();
    });
    await done;
  } finally {
    srv.close();
  }
}

// Each at least SMALL_CHUNK bytes, so handed on as it is (smaller ones are packed: see below).
const pieces = Array.from({ length: 6 }, (_, i) => Buffer.alloc(1500, 0x61 + i));

test('cappedChunks: every buffered chunk is handed on as it was made, so zeroing what was read zeroes the body', async () => {
  await serveOne(pieces, async (req, pushed) => {
    const got: Buffer[] = [];
    for await (const c of cappedChunks(req, 10_000)) {
      got.push(Buffer.from(c));
      c.fill(0);
    }
    assert.deepEqual(Buffer.concat(got), Buffer.concat(pieces));
    assert.ok(pushed.length > 1, 'the body arrived as several chunks');
    assert.ok(pushed.every((c) => c.every((b) => b === 0)), 'every chunk the HTTP layer made is zeroed');
  });
});

test('SEC-01 cappedChunks: past the cap the chunk in hand and every chunk still queued are zeroed', async () => {
  await serveOne(pieces, async (req, pushed) => {
    const seen: Buffer[] = [];
    await assert.rejects(async () => {
      for await (const c of cappedChunks(req, 3500)) {
        seen.push(c);
        c.fill(0);
      }
    }, (e: unknown) => e instanceof ApiError && e.reason === 'payload_too_large');
    assert.equal(seen.length, 2);
    // The refused chunk is zeroed at once; the rest of this request, which had arrived whole,
    // is drained and zeroed by the reader (the router's linger only drains requests still arriving).
    assert.ok(pushed.slice(0, 3).every((c) => c.every((b) => b === 0)));
    const deadline = Date.now() + 10_000;
    while (!pushed.every((c) => c.every((b) => b === 0)) && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    assert.ok(pushed.every((c) => c.every((b) => b === 0)), 'the chunks still buffered were zeroed too');
  });
});

test('DoS: a body sent as one-byte chunks is packed into 16 KiB buffers (not one Buffer per byte), in order, originals zeroed', async () => {
  const tiny = Array.from({ length: 40_000 }, (_, i) => Buffer.from([0x41 + (i % 26)]));
  await serveOne(tiny, async (req, pushed) => {
    const got: Buffer[] = [];
    for await (const c of cappedChunks(req, 1_000_000)) got.push(Buffer.from(c));
    assert.deepEqual(Buffer.concat(got), Buffer.concat(tiny));
    assert.ok(pushed.length > 1000, `the body arrived as many chunks (${pushed.length})`);
    assert.ok(got.length <= Math.ceil(40_000 / 16_384) + 1, `handed on in ${got.length} buffers`);
    assert.ok(pushed.every((c) => c.length >= SMALL_CHUNK || c.every((b) => b === 0)), 'every small chunk was zeroed once copied');
  });
});

test('cappedChunks: the 16 KiB pack that small chunks are copied into is zeroed where they were copied, once handed on', async () => {
  // A body shorter than one pack, in small chunks: handed on as an exact copy of the pack.
  const small = Array.from({ length: 5 }, (_, i) => Buffer.from(`SECRET-${i}-`.repeat(8)));
  await serveOne(small, async (req) => {
    const packs: Buffer[] = [];
    const alloc = Buffer.allocUnsafeSlow;
    Buffer.allocUnsafeSlow = (size: number): ReturnType<typeof alloc> => {
      const b = alloc(size);
      if (size === 16 * 1024) packs.push(b);
      return b;
    };
    try {
      const got: Buffer[] = [];
      for await (const c of cappedChunks(req, 1_000_000)) got.push(Buffer.from(c));
      assert.deepEqual(Buffer.concat(got), Buffer.concat(small));
    } finally {
      Buffer.allocUnsafeSlow = alloc;
    }
    const used = Buffer.concat(small).length;
    assert.ok(packs.length >= 1, 'the chunks went through a pack');
    for (const p of packs) assert.ok(p.subarray(0, used).every((b) => b === 0), 'every byte copied into the pack is zeroed');
  });
});

test('readBody: a body that arrived whole in several chunks is read from the chunks themselves, so zeroing reaches them', async () => {
  const secret = Array.from({ length: 3 }, (_, i) => Buffer.from(`SECRETSECRET${i + 1}`));
  await serveOne(secret, async (req, pushed) => {
    assert.ok(req.complete, 'the whole request arrived before the read');
    const body = await readBody(req, 10_000);
    assert.equal(body.toString(), 'SECRETSECRET1SECRETSECRET2SECRETSECRET3');
    body.fill(0);
    assert.ok(pushed.length > 1, 'several chunks');
    assert.ok(pushed.every((c) => c.every((b) => b === 0)), 'every chunk the HTTP layer made is zeroed');
  });
});

test('cappedChunks readAheadBytes: reads ahead until that many bytes wait (the buffers as made, in order); stopped early, zeroes what it read ahead', async () => {
  const total = pieces.length * 1500;
  for (const [readAheadBytes, queued] of [[0, 1], [4000, 3]] as const) {
    await serveOne(pieces, async (req, pushed) => {
      const it = cappedChunks(req, 10_000, { readAheadBytes });
      const first = await it.next();
      assert.equal(first.value, pushed[0], 'the first buffer the HTTP layer made');
      // With 4,000: three 1,500-byte chunks taken from the stream before it pauses (4,500 ≥ 4,000).
      assert.equal(req.readableLength, total - queued * 1500, `${queued} chunk(s) taken from the stream`);
      const second = await it.next();
      assert.equal(second.value, pushed[1]);
      (first.value as Buffer).fill(0);
      (second.value as Buffer).fill(0);
      await it.return(undefined);
      assert.ok(pushed.slice(0, queued).every((c) => c.every((b) => b === 0)), 'every chunk read ahead and not handed on is zeroed');
    });
  }
});
