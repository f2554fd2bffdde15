/**
 * The router's streamed stream-variant (issue 6): pulled, byte-capped request bodies and
 * streamed replies with back-pressure, over a real HTTP server on port 0 (CIP-05, P15).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Writable } from 'node:stream';
import { createLogger } from '../lib/log.js';
import { SpiffeId } from '../spiffe/id.js';
import { badRequest } from '../protocol/errors.js';
import type { StreamReply } from './reply.js';
import { createRouter } from './router.js';
import { type RouterServer, serveRouter, streamOnlyRoute } from '../../test/helpers/router-server.js';

const CAP = 1024 * 1024;
const peer = SpiffeId.parse('spiffe://spike.ist/app/x');
let handlerRuns = 0;
const keptReplyChunks: Buffer[] = [];

const routes = [
  // Echo: each request chunk goes out as soon as it arrives (XOR 0x5a), then a trailer.
  streamOnlyRoute('/echo', CAP, (ctx): StreamReply => {
    handlerRuns++;
    const body = ctx.body();
    async function* out(): AsyncGenerator<Uint8Array> {
      for await (const c of body) {
        const o = Buffer.from(c);
        for (let i = 0; i < o.length; i++) o[i]! ^= 0x5a;
        yield o;
      }
      yield Buffer.from('END');
    }
    return { kind: 'stream', chunks: out(), ...(ctx.declaredLength !== undefined ? { length: ctx.declaredLength + 3 } : {}) };
  }),
  // Reads everything first, then answers (decrypt-like).
  streamOnlyRoute('/collect', CAP, async (ctx): Promise<StreamReply> => {
    handlerRuns++;
    let n = 0;
    for await (const c of ctx.body()) n += c.length;
    const chunk = Buffer.from(`got ${n}`);
    keptReplyChunks.push(chunk);
    async function* out(): AsyncGenerator<Uint8Array> {
      yield chunk;
    }
    return { kind: 'stream', chunks: out() };
  }),
  // Answers one chunk that spans its whole ArrayBuffer and one that is part of a larger one.
  streamOnlyRoute('/owned', CAP, (): StreamReply => {
    const whole = Buffer.allocUnsafeSlow(64 * 1024).fill(1);
    const parent = Buffer.allocUnsafeSlow(64 * 1024).fill(2);
    keptReplyChunks.push(whole, parent);
    async function* out(): AsyncGenerator<Uint8Array> {
      yield whole;
      yield parent.subarray(0, 32 * 1024);
    }
    return { kind: 'stream', chunks: out(), length: 96 * 1024 };
  }),
  // Fails after the first reply chunk.
  streamOnlyRoute('/fail-late', CAP, (): StreamReply => {
    async function* out(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(1000, 1);
      throw badRequest('late', 'late failure');
    }
    return { kind: 'stream', chunks: out() }; // chunked: a normal end would look complete
  }),
];

const sink = new Writable({ write: (_c, _e, cb) => cb() });
const router = createRouter(routes, { isReady: () => true, logger: createLogger({ component: 'router-stream-test', destination: sink }) });
let server: RouterServer;

before(async () => {
  server = await serveRouter(router, peer);
});

after(() => server.close());

function request(path: string, headers: Record<string, string> = {}): http.ClientRequest {
  return http.request({ host: '127.0.0.1', port: server.port, path, method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream', ...headers } });
}

function collect(res: http.IncomingMessage): Promise<{ body: Buffer; complete: boolean }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    res.on('data', (c: Buffer) => parts.push(c));
    const done = (): void => resolve({ body: Buffer.concat(parts), complete: res.complete });
    res.on('end', done);
    res.on('error', done);
    res.on('aborted', done);
    res.on('close', done);
  });
}

test('a streamed reply starts before the request body is complete (no buffering in the router)', async () => {
  const req = request('/echo');
  const first = Buffer.alloc(64 * 1024, 7);
  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  req.write(first);
  const timeout = new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no response while the body is still open')), 30_000).unref());
  const res = await Promise.race([response, timeout]);
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'application/octet-stream');
  const body = collect(res);
  for (let i = 0; i < 31; i++) req.write(Buffer.alloc(16 * 1024, i));
  req.end();
  const { body: out, complete } = await body;
  assert.equal(complete, true);
  assert.equal(out.length, 64 * 1024 + 31 * 16 * 1024 + 3);
  assert.equal(out[0], 7 ^ 0x5a);
  assert.equal(out.subarray(out.length - 3).toString(), 'END');
});

test('CIP-05: a declared Content-Length over the cap → 400 before the handler runs; connection closed', async () => {
  const before = handlerRuns;
  const req = request('/echo', { 'content-length': String(CAP + 1) });
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
    req.write(Buffer.alloc(1024));
  });
  assert.equal(res.statusCode, 400);
  assert.equal(res.headers['connection'], 'close');
  const { body } = await collect(res);
  assert.match(body.toString(), /"err":"api_bad_request"/);
  assert.equal(handlerRuns, before);
  req.destroy();
});

test('CIP-05: a chunked body crossing the cap → 400 from the running count when no reply has started', async () => {
  const req = request('/collect');
  req.on('error', () => undefined);
  const res = await new Promise<http.IncomingMessage>((resolve) => {
    req.once('response', resolve);
    const chunk = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    const pump = (): void => {
      while (sent <= CAP + chunk.length && !req.destroyed) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
    };
    pump();
  });
  assert.equal(res.statusCode, 400);
  const { body } = await collect(res);
  assert.match(body.toString(), /request body too large/);
  req.destroy();
});

test('an error after the first reply chunk cuts the reply off (never a complete-looking answer)', async () => {
  const req = request('/fail-late');
  req.end();
  // Either the connection drops before the head was flushed (request error), or the reply
  // arrives cut short; never a complete answer.
  const outcome = await new Promise<{ status?: number; complete: boolean; length: number }>((resolve) => {
    req.once('error', () => resolve({ complete: false, length: 0 }));
    req.once('response', (res) => {
      void collect(res).then(({ body, complete }) => resolve({ status: res.statusCode ?? 0, complete, length: body.length }));
    });
  });
  assert.equal(outcome.complete, false);
  assert.ok(outcome.length <= 1000);
});

test('reply chunks are zeroed once flushed', async () => {
  const req = request('/collect');
  req.end(Buffer.from('hello'));
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  const { body } = await collect(res);
  assert.equal(body.toString(), 'got 5');
  const kept = keptReplyChunks.at(-1)!;
  assert.equal(kept.every((b) => b === 0), true);
});

test('reply chunks spanning a whole ArrayBuffer are freed once flushed; part of a larger one is only zeroed', async () => {
  const req = request('/owned');
  req.end();
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  const { body, complete } = await collect(res);
  assert.equal(complete, true);
  assert.equal(body.length, 96 * 1024);
  assert.ok(body.subarray(0, 64 * 1024).every((b) => b === 1) && body.subarray(64 * 1024).every((b) => b === 2), 'the client got the bytes as sent');
  const [whole, parent] = keptReplyChunks.slice(-2) as [Buffer, Buffer];
  assert.equal(whole.byteLength, 0, 'freed (detached) once written');
  assert.equal(parent.byteLength, 64 * 1024, 'a buffer the producer still shares is never freed');
  assert.ok(parent.subarray(0, 32 * 1024).every((b) => b === 0), 'the part sent is zeroed');
  assert.ok(parent.subarray(32 * 1024).every((b) => b === 2), 'the rest is untouched');
});
