/**
 * The read-and-discard linger after an early answer (linger.ts), over a real HTTP server on
 * port 0 and raw client sockets (SEC-01, FI-12): the answer reaches a client that is still
 * sending; a client that keeps sending is cut at the byte bound, a slow one at the time
 * bound; a client that finishes within the bound gets a clean close. Waits are conditions
 * with generous deadlines, never fixed sleeps.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../lib/log.js';
import { SpiffeId } from '../spiffe/id.js';
import { guardIdentity } from './guards.js';
import '../protocol/errors.js'; // the answers below are pinned in SPIKE's wire codes
import type { LingerLimits } from './linger.js';
import { defineRoute } from './route.js';
import { type RouterHandler, createRouter } from './router.js';
import { s } from './schema.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CAP = 16 * KiB;
const pilot = SpiffeId.parse('spiffe://spike.ist/spike/pilot/role/superuser');
const logger = createLogger({ component: 'linger-test', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

interface Srv {
  port: number;
  /** Server-side sockets, in accept order. */
  sockets: net.Socket[];
  /** Server clock: when each request reached the handler, and when each socket closed. */
  requestAt: Map<net.Socket, number>;
  closedAt: Map<net.Socket, number>;
  close(): Promise<void>;
}

function routerWith(linger: Partial<LingerLimits>): RouterHandler {
  const only = guardIdentity('pilot', (p) => p.equals(pilot));
  return createRouter([defineRoute({ path: '/r', body: s.object({ k: s.string() }), guard: only, handle: () => ({}) })], {
    isReady: () => true, logger, maxBodyBytes: CAP, linger,
  });
}

async function serve(router: RouterHandler): Promise<Srv> {
  const sockets: net.Socket[] = [];
  const requestAt = new Map<net.Socket, number>();
  const closedAt = new Map<net.Socket, number>();
  const srv = http.createServer((req, res) => {
    if (!requestAt.has(req.socket)) requestAt.set(req.socket, Date.now());
    void router(req, res, req.headers['x-peer'] === 'pilot' ? pilot : SpiffeId.parse('spiffe://spike.ist/app/nobody'));
  });
  srv.on('connection', (sock: net.Socket) => {
    sockets.push(sock);
    sock.on('close', () => closedAt.set(sock, Date.now()));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as AddressInfo).port,
    sockets,
    requestAt,
    closedAt,
    close: async () => {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    },
  };
}

async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface RawRun {
  /** Everything the server sent. */
  received: () => string;
  /** Bytes this client managed to hand to the kernel. */
  sent: () => number;
  /** Resolves when the client socket is closed (with the error code, if any). */
  closed: Promise<string | null>;
  /** When the first response byte arrived. */
  answeredAt: () => number | undefined;
  stop(): void;
}

/** A raw client sending a chunked body: `chunk` bytes every `everyMs` (0 = as fast as possible), forever. */
function endlessSender(port: number, peer: string, chunk: number, everyMs: number): RawRun {
  const sock = net.connect(port, '127.0.0.1');
  let got = '';
  let sent = 0;
  let answeredAt: number | undefined;
  let stopped = false;
  const piece = Buffer.concat([Buffer.from(`${chunk.toString(16)}\r\n`), Buffer.alloc(chunk, 0x20), Buffer.from('\r\n')]);
  sock.on('data', (d: Buffer) => {
    answeredAt ??= Date.now();
    got += d.toString('latin1');
  });
  const closed = new Promise<string | null>((resolve) => {
    let code: string | null = null;
    sock.on('error', (e: NodeJS.ErrnoException) => {
      code = e.code ?? e.message;
    });
    sock.on('close', () => resolve(code));
  });
  const pump = (): void => {
    while (!stopped && !sock.destroyed) {
      sent += piece.length;
      const ok = sock.write(piece);
      if (everyMs > 0) {
        setTimeout(pump, everyMs);
        return;
      }
      if (!ok) {
        sock.once('drain', pump);
        return;
      }
    }
  };
  sock.on('connect', () => {
    sock.write(`POST /r HTTP/1.1\r\nHost: x\r\nX-Peer: ${peer}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
    pump();
  });
  return {
    received: () => got,
    sent: () => sent,
    closed,
    answeredAt: () => answeredAt,
    stop: () => {
      stopped = true;
      sock.destroy();
    },
  };
}

let bytesSrv: Srv;
let timeSrv: Srv;
let defaultSrv: Srv;
let graceSrv: Srv;
const BYTES_BOUND = 512 * KiB;
const TIME_BOUND_MS = 400;

before(async () => {
  bytesSrv = await serve(routerWith({ maxBytes: BYTES_BOUND, maxMs: 120_000 }));
  timeSrv = await serve(routerWith({ maxBytes: 1024 * MiB, maxMs: TIME_BOUND_MS }));
  defaultSrv = await serve(routerWith({}));
  // A grace longer than any test: the client below reads its answer whenever its turn comes.
  graceSrv = await serve(routerWith({ maxBytes: BYTES_BOUND, maxMs: 120_000, cutGraceMs: 120_000 }));
});

after(async () => {
  await Promise.all([bytesSrv.close(), timeSrv.close(), defaultSrv.close(), graceSrv.close()]);
});

test('linger: a client that sends endlessly after the 400 gets the answer and is cut once the byte bound is discarded', async () => {
  const run = endlessSender(bytesSrv.port, 'pilot', 64 * KiB, 0);
  try {
    const code = await run.closed;
    assert.match(run.received(), /^HTTP\/1\.1 400 /);
    assert.match(run.received(), /\r\nconnection: close\r\n/i);
    assert.ok(run.received().endsWith('{"err":"api_bad_request","message":"request body too large"}'), 'the whole answer arrived');
    const server = bytesSrv.sockets.at(-1)!;
    await until(() => server.destroyed, 'the server to close the connection');
    // read: the cap, then the bound, plus at most a socket read or two of slack
    assert.ok(server.bytesRead <= CAP + BYTES_BOUND + 512 * KiB, `server read ${server.bytesRead} bytes`);
    assert.ok(server.bytesRead > BYTES_BOUND, 'the server did linger (discarded up to the bound)');
    assert.notEqual(code, null, 'the endless sender was cut, not closed cleanly');
  } finally {
    run.stop();
  }
});

test('FI-12 ATTACK a fast sender that writes the whole byte bound before it reads: the server stops reading instead of resetting, so the answer is not lost', async () => {
  // The client's event loop does not read until the server has discarded the whole bound:
  // what a busy client writing over loopback does. A cut at that moment sends a reset, and
  // Linux drops the answer still waiting in the client's receive queue (ECONNRESET, no 400).
  const sock = net.connect(graceSrv.port, '127.0.0.1');
  let got = '';
  let error: string | null = null;
  let stopped = false;
  sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
  sock.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
  try {
    await new Promise<void>((r) => sock.once('connect', r));
    sock.pause();
    sock.write('POST /r HTTP/1.1\r\nHost: x\r\nX-Peer: pilot\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n');
    const piece = Buffer.alloc(64 * KiB, 0x20);
    const pump = (): void => {
      while (!stopped && !sock.destroyed) {
        if (!sock.write(piece)) {
          sock.once('drain', pump);
          return;
        }
      }
    };
    pump();
    await until(() => graceSrv.sockets.length > 0 && graceSrv.sockets.at(-1)!.bytesRead > CAP + BYTES_BOUND, 'the server to discard the byte bound');
    const server = graceSrv.sockets.at(-1)!;
    const readAtBound = server.bytesRead;
    sock.resume();
    await until(() => got.endsWith('{"err":"api_bad_request","message":"request body too large"}') || error !== null, 'the answer or an error');
    assert.equal(error, null, `the client saw ${String(error)} instead of its answer`);
    assert.match(got, /^HTTP\/1\.1 400 /);
    assert.equal(server.destroyed, false, 'not cut before the grace');
    // Paused: at most the chunks already in flight inside Node were read after the bound.
    assert.ok(server.bytesRead - readAtBound <= 256 * KiB, `read ${server.bytesRead - readAtBound} bytes after the bound`);
  } finally {
    stopped = true;
    sock.destroy();
  }
});

test('linger: a slow sender that never finishes is cut at the time bound, after receiving the answer', async () => {
  const run = endlessSender(timeSrv.port, 'nobody', 1 * KiB, 20);
  try {
    await until(() => run.answeredAt() !== undefined, 'the 401');
    await run.closed;
    const server = timeSrv.sockets.at(-1)!;
    await until(() => timeSrv.closedAt.has(server), 'the server to close the connection');
    // The pre-authorisation refused the caller before reading; the answer came first.
    assert.match(run.received(), /^HTTP\/1\.1 401 /);
    assert.ok(run.received().endsWith('{"err":"access_unauthorized"}'));
    // Both times on the server's clock (a loaded client sees the answer late, which would
    // shorten a client-side interval). The request reached the handler before the answer and
    // the linger timer, and a timer never fires early; the upper bound is `until`'s deadline.
    const lingered = timeSrv.closedAt.get(server)! - timeSrv.requestAt.get(server)!;
    assert.ok(lingered >= TIME_BOUND_MS - 5, `cut after ${lingered} ms`);
    assert.ok(server.bytesRead < 1 * MiB);
  } finally {
    run.stop();
  }
});

test('linger: a client that finishes sending within the bound gets the whole answer and a clean close (no reset, no EPIPE)', async () => {
  for (const [peer, size, want] of [['pilot', 3 * MiB, 400], ['nobody', 3 * MiB, 401], ['pilot', CAP + 1, 400]] as const) {
    const outcome = await new Promise<{ status: number; body: string; error: string | null }>((resolve) => {
      let error: string | null = null;
      let reply: { status: number; body: string } | undefined;
      const req = http.request(
        { host: '127.0.0.1', port: defaultSrv.port, path: '/r', method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'x-peer': peer, 'content-length': String(size) } },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => (reply = { status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
      req.on('close', () => setImmediate(() => resolve({ status: reply?.status ?? 0, body: reply?.body ?? '', error })));
      req.end(Buffer.alloc(size, 0x20));
    });
    assert.equal(outcome.status, want, `${peer} ${size}`);
    assert.equal(outcome.error, null, `${peer} ${size}: the client saw ${String(outcome.error)}`);
    const server = defaultSrv.sockets.at(-1)!;
    await until(() => server.destroyed, 'the server to close the connection');
    assert.ok(server.bytesRead >= size, 'the rest of the body was read (and discarded)');
  }
});
