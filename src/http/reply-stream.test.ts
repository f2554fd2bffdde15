/**
 * What happens to a streamed reply's chunks when the client goes away, over TLS: every chunk
 * handed to the writer ends zeroed, none is left as it was (also one pulled after the socket
 * died but before the response noticed: Node never calls back a write to a destroyed socket);
 * and a chunk its producer yields after handing it over cuts the reply instead of shortening it.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { createLogger } from '../lib/log.js';
import { SpiffeId } from '../spiffe/id.js';
import '../protocol/errors.js'; // chooses the wire error codes, as Nexus does before making a router
import { waitFor } from '../../test/helpers/mtls-harness.js';
import { createCa, issueLeaf } from '../../test/helpers/pki.js';
import type { StreamReply } from './reply.js';
import { createRouter } from './router.js';
import { streamOnlyRoute } from '../../test/helpers/router-server.js';

const CHUNK = 256 * 1024;
/** Every chunk the `/big` producer handed over, kept to look at afterwards. */
const handed: Buffer[] = [];
const kept: Buffer[] = [];

/** A stream-only route answering with `reply()` (its JSON variant is never called here). */
const streamRoute = (path: string, reply: () => StreamReply) => streamOnlyRoute(path, 1024, reply);

const routes = [
  // 64 MiB in 256 KiB chunks, far more than a client that hangs up early reads.
  streamRoute('/big', () => {
    async function* out(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 256; i++) {
        const b = Buffer.allocUnsafeSlow(CHUNK).fill(0x77);
        handed.push(b);
        yield b;
      }
    }
    return { kind: 'stream', chunks: out(), length: 256 * CHUNK };
  }),
  // The socket dies between two chunks, before the response has noticed (a turn later).
  streamRoute('/gone', () => {
    const first = Buffer.allocUnsafeSlow(64 * 1024).fill(3);
    const second = Buffer.allocUnsafeSlow(64 * 1024).fill(4);
    kept.push(second);
    async function* out(): AsyncGenerator<Uint8Array> {
      yield first;
      lastRequest?.socket.destroy();
      yield second;
    }
    return { kind: 'stream', chunks: out(), length: 128 * 1024 };
  }),
  // Yields one chunk twice (a producer bug): the second time it has been freed.
  streamRoute('/twice', () => {
    const b = Buffer.allocUnsafeSlow(64 * 1024).fill(1);
    kept.push(b);
    async function* out(): AsyncGenerator<Uint8Array> {
      yield b;
      await new Promise((r) => setTimeout(r, 50)); // let the first write flush (and free it)
      yield b;
    }
    return { kind: 'stream', chunks: out() }; // chunked: a short reply could look complete
  }),
];

const peer = SpiffeId.parse('spiffe://spike.ist/app/x');
const router = createRouter(routes, { isReady: () => true, logger: createLogger({ component: 'reply-stream-test', destination: new Writable({ write: (_c, _e, cb) => cb() }) }) });
let server: https.Server;
let port = 0;
/** The request being served (the `/gone` producer destroys its socket). */
let lastRequest: IncomingMessage | undefined;

before(async () => {
  const ca = await createCa('reply-stream.test');
  const leaf = await issueLeaf(ca, {});
  server = https.createServer({ cert: leaf.pem, key: leaf.key.export({ type: 'pkcs8', format: 'pem' }) }, (req, res) => {
    lastRequest = req;
    void router(req, res, peer);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function post(path: string, onData: (n: number, stop: () => void) => void): Promise<{ bytes: number; complete: boolean }> {
  return new Promise((resolve) => {
    const req = https.request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, rejectUnauthorized: false, headers: { 'content-type': 'application/octet-stream' } });
    req.on('error', () => resolve({ bytes: -1, complete: false }));
    req.on('response', (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        onData(n, () => req.destroy());
      });
      res.on('error', () => undefined);
      res.on('close', () => resolve({ bytes: n, complete: res.complete }));
    });
    req.end();
  });
}

test('clients gone mid-reply (TLS, 24 at once): every chunk handed to the writer ends zeroed or freed, written or not', async () => {
  const runs = await Promise.all(Array.from({ length: 24 }, (_, i) => post('/big', (n, stop) => {
    if (n > 200_000 + i * 60_000) stop();
  })));
  for (const r of runs) assert.equal(r.complete, false);
  const clean = (b: Buffer): boolean => b.byteLength === 0 || b.every((x) => x === 0);
  await waitFor(() => handed.length > 0 && handed.every(clean), `all handed chunks zeroed (${handed.filter((b) => !clean(b)).length} of ${handed.length} not)`, 30_000);
});

test('a chunk yielded again after it was handed over (and freed) cuts the reply; never a short complete one', async () => {
  const got = await post('/twice', () => undefined);
  assert.equal(got.complete, false, `a complete reply of ${got.bytes} bytes`);
  assert.ok(got.bytes <= 64 * 1024);
  assert.equal(kept.at(-1)?.byteLength, 0, 'the chunk was freed after its first write');
});

test('the socket destroyed between two chunks, before the response noticed: the next chunk is zeroed and freed, not written', async () => {
  const got = await post('/gone', () => undefined);
  assert.equal(got.complete, false);
  const second = kept.at(-1)!;
  await waitFor(() => second.byteLength === 0, 'the chunk pulled after the socket died to be freed', 30_000);
});
