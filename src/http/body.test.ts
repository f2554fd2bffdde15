/**
 * The body reader's shortcut for HTTP/1.1 requests that have already arrived whole: same
 * bytes, same cap, same zeroing as the general (chunk-by-chunk) reader, over a real server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { ApiError } from '../protocol/errors.js';
import { bodyFullyTaken, readBody } from './body.js';

/** Serves one request: waits until Node has the whole message, then hands it to `fn`. */
async function withCompleteRequest(
  send: (port: number) => Promise<void>,
  fn: (req: http.IncomingMessage) => Promise<void>,
): Promise<void> {
  let done!: Promise<void>;
  const srv = http.createServer((req, res) => {
    done = (async () => {
      const deadline = Date.now() + 10_000;
      while (!req.complete && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      assert.equal(req.complete, true);
      try {
        await fn(req);
      } finally {
        res.end('ok');
      }
    })();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    await send((srv.address() as { port: number }).port);
    await done;
  } finally {
    srv.close();
  }
}

function post(port: number, body: Buffer, headers: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const r = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/', headers: { connection: 'close', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    r.on('error', reject);
    if (headers['transfer-encoding'] === 'chunked') {
      // Several chunks, so the stream holds more than one buffer.
      for (let o = 0; o < body.length; o += 7) r.write(body.subarray(o, o + 7));
      r.end();
    } else r.end(body);
  });
}

test('readBody: a body that arrived whole is read as sent, its buffered chunks zeroed, the stream ends', async () => {
  const body = Buffer.from(JSON.stringify({ path: 'a/b', values: { k: 'v'.repeat(100) } }));
  const cases: Array<Record<string, string>> = [{}, { 'transfer-encoding': 'chunked' }];
  for (const headers of cases) {
    await withCompleteRequest((port) => post(port, body, headers), async (req) => {
      const held: Buffer[] = [];
      const read = req.read.bind(req);
      req.read = ((n?: number) => {
        const c = read(n) as Buffer | null;
        if (c !== null) held.push(c);
        return c;
      }) as typeof req.read;
      const got = await readBody(req, 1024);
      assert.deepEqual(got, body);
      assert.ok(held.length > 0 && held.every((c) => c.every((b) => b === 0)));
      await new Promise<void>((r) => (req.readableEnded ? r() : req.once('end', () => r())));
    });
  }
});

test('SEC-01: a body that arrived whole but is over the cap is refused (no Content-Length)', async () => {
  const body = Buffer.alloc(2000, 0x61);
  await withCompleteRequest((port) => post(port, body, { 'transfer-encoding': 'chunked' }), async (req) => {
    await assert.rejects(readBody(req, 1000), (e: unknown) => e instanceof ApiError && e.reason === 'payload_too_large' && e.closeConnection);
  });
});

test('readBody: exactly the cap, arrived whole, is read whole', async () => {
  const body = Buffer.alloc(1000, 0x62);
  await withCompleteRequest((port) => post(port, body, { 'transfer-encoding': 'chunked' }), async (req) => {
    assert.deepEqual(await readBody(req, 1000), body);
  });
});

test('SEC-02: a body still arriving at the body deadline is refused with 408 body_timeout (closes); one that arrives in time is read', async () => {
  const { PassThrough } = await import('node:stream');
  const slow = new PassThrough();
  slow.write('{"path":"a');
  const t0 = performance.now();
  await assert.rejects(readBody(slow, 1000, { timeoutMs: 150 }), (e: unknown) =>
    e instanceof ApiError && e.status === 408 && e.reason === 'body_timeout' && e.closeConnection && e.expose);
  const waited = performance.now() - t0;
  assert.ok(waited >= 140 && waited < 5_000, `answered after ${waited.toFixed(0)} ms`);
  const quick = new PassThrough();
  const got = readBody(quick, 1000, { timeoutMs: 5_000 });
  quick.write('{"a":');
  setImmediate(() => quick.end('1}'));
  assert.equal((await got).toString(), '{"a":1}');
});

/**
 * Sends raw HTTP/1.1 bytes on one keep-alive connection and reads each request's body the way
 * the router does: straight from the request event, before Node's parser has marked it complete.
 */
async function readFromRequestEvent(writes: Array<{ bytes: string; afterMs?: number }>, count: number): Promise<Array<{ body: string; complete: boolean; taken: boolean; ended: boolean }>> {
  const seen: Array<{ body: string; complete: boolean; taken: boolean; ended: boolean }> = [];
  const done: Array<Promise<void>> = [];
  const srv = http.createServer((req, res) => {
    done.push((async () => {
      const got = await readBody(req, 1024);
      const entry = { body: got.toString('utf8'), complete: req.complete, taken: bodyFullyTaken(req), ended: false };
      seen.push(entry);
      res.end('ok');
      await new Promise<void>((r) => (req.readableEnded ? r() : req.once('end', () => r())));
      entry.ended = true;
    })());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const sock = net.connect((srv.address() as { port: number }).port, '127.0.0.1');
  let answers = '';
  sock.on('data', (c: Buffer) => {
    answers += c.toString('latin1');
  });
  try {
    for (const w of writes) {
      if (w.afterMs) await new Promise((r) => setTimeout(r, w.afterMs));
      sock.write(w.bytes);
    }
    const deadline = Date.now() + 10_000;
    while ((answers.match(/HTTP\/1\.1 200/g) ?? []).length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await Promise.all(done);
    assert.equal((answers.match(/HTTP\/1\.1 200/g) ?? []).length, count, 'every request answered on the one connection');
    assert.doesNotMatch(answers, /connection: close/i, 'no answer closes the connection');
  } finally {
    sock.destroy();
    srv.close();
  }
  return seen;
}

const post1 = (body: string): string => `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

test('P1: a Content-Length body that came with its headers is taken whole from the request event, before the parser marks it complete; the connection stays open and the stream ends', async () => {
  const a = '{"path":"a/b"}';
  const b = '{"path":"c/d","x":1}';
  // Two requests in one write (pipelined), then a third on its own.
  const seen = await readFromRequestEvent([{ bytes: post1(a) + post1(b) }, { bytes: post1(a), afterMs: 20 }], 3);
  assert.deepEqual(seen.map((s) => s.body), [a, b, a]);
  for (const s of seen) {
    assert.equal(s.taken, true);
    assert.equal(s.ended, true, 'the request stream still ends');
  }
  assert.ok(seen.some((s) => !s.complete), 'at least one body was taken before the parser marked its message complete (the shortcut)');
});

test('P1: a body whose bytes come after the headers, or only partly with them, is read by the general reader, whole and in order', async () => {
  const body = '{"path":"late/body","pad":"' + 'p'.repeat(40) + '"}';
  const head = `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`;
  const seen = await readFromRequestEvent([
    { bytes: head },
    { bytes: body.slice(0, 10), afterMs: 30 },
    { bytes: body.slice(10), afterMs: 30 },
    { bytes: head + body.slice(0, 5), afterMs: 30 },
    { bytes: body.slice(5), afterMs: 30 },
  ], 2);
  assert.deepEqual(seen.map((s) => s.body), [body, body]);
  for (const s of seen) assert.equal(s.complete, true, 'the general reader returns once the message is complete');
});
