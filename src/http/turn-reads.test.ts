/**
 * FI-12: a body pushed as fast as a client can send it is read a share per turn of the event
 * loop (turn-reads.ts), by the body reader and by the read-and-discard linger alike, over a
 * real HTTP server and a raw client socket. Without the pacing, libuv's read loop handed over
 * up to 2 MiB per turn from one socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { cappedChunks } from './body.js';
import { lingerThenClose } from './linger.js';
import { TURN_READ_BYTES } from './turn-reads.js';

const MiB = 1024 * 1024;
const BODY = 8 * MiB;
/** Sends a request head and BODY bytes as fast as the socket takes them. */
const SENDER = `
const sock = require('node:net').connect(Number(process.argv[1]), '127.0.0.1');
sock.on('error', () => process.exit(0));
sock.on('data', () => undefined);
sock.write('POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: ' + process.argv[2] + '\\r\\n\\r\\n');
const piece = Buffer.alloc(256 * 1024, 0x61);
let sent = 0;
const pump = () => { while (sent < Number(process.argv[2])) { sent += piece.length; if (!sock.write(piece)) { sock.once('drain', pump); return; } } };
pump();
`;

async function perTurnReads(mode: 'body' | 'linger'): Promise<{ total: number; worst: number }> {
  let current = 0;
  let worst = 0;
  let total = 0;
  let live = true;
  const tick = (): void => {
    worst = Math.max(worst, current);
    current = 0;
    if (live) setImmediate(tick);
  };
  let done!: () => void;
  const finished = new Promise<void>((resolve) => { done = resolve; });
  const server = http.createServer((req, res) => {
    const count = (c: Buffer): void => { current += c.length; total += c.length; };
    if (mode === 'body') {
      void (async () => {
        const reading = cappedChunks(req, BODY);
        const first = reading.next(); // the reader is set up (and the stream paused) before the counter joins
        req.on('data', count);
        for (let r = await first; r.done !== true; r = await reading.next()) r.value.fill(0);
        res.end('ok');
        done();
      })();
    } else {
      res.writeHead(400, { 'content-length': '2', connection: 'close' });
      res.write('no');
      lingerThenClose(req, res, { maxBytes: BODY + MiB, maxMs: 60_000, cutGraceMs: 0 });
      req.on('data', count);
      req.on('end', () => done());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  setImmediate(tick);
  // The sender is another process, so it fills the socket's buffers while this loop works.
  const sender = spawn(process.execPath, ['-e', SENDER, String(port), String(BODY)], { stdio: 'ignore' });
  await finished;
  live = false;
  sender.kill();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return { total, worst };
}

for (const mode of ['body', 'linger'] as const) {
  test(`FI-12 turn-paced reads (${mode}): an 8 MiB body sent as fast as possible is read at most a few times TURN_READ_BYTES per turn of the event loop`, async () => {
    const { total, worst } = await perTurnReads(mode);
    assert.equal(total, BODY, 'the whole body was read');
    assert.ok(worst <= 4 * TURN_READ_BYTES, `worst turn ${worst} bytes (share ${TURN_READ_BYTES})`);
  });
}
