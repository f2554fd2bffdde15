/**
 * The `node:https` mTLS client (https-client.ts) against a real mTLS server: a burst of
 * parallel requests opens at most `connections` connections (the others wait for a free one,
 * none is refused), keep-alive reuses them, a request still waiting for a connection
 * honours its abort signal, and an answer that comes before the body was sent leaves no
 * headers timer behind (it kept e2e test processes alive for a minute).
 */
import { test, before, after } from 'node:test';
import { createHook } from 'node:async_hooks';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import { authorizeIf } from '../authorize.js';
import { StaticX509Source } from '../source.js';
import { createLogger } from '../../lib/log.js';
import { bundleSetOf, createCa, makeSvid, type TestCa } from '../../../test/helpers/pki.js';
import { createMtlsServer, type MtlsServer } from './server.js';
import { createMtlsHttpsClient, type MtlsHttpsClient } from './https-client.js';

const TD = 'https-client.test';
const SERVER_ID = `spiffe://${TD}/server`;

let ca: TestCa;
let server: MtlsServer;
let client: MtlsHttpsClient;
const sockets = new Set<Socket>();
const held: ServerResponse[] = [];
let hold = false;
let earlyBodyDrained = false;

before(async () => {
  ca = await createCa(TD);
  server = createMtlsServer({
    source: new StaticX509Source(await makeSvid(ca, SERVER_ID), bundleSetOf(ca)),
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ component: 'https-client-test', level: 'silent' }),
    handler: (req, res) => {
      sockets.add(req.socket);
      if (req.url === '/early') {
        res.writeHead(400).end('early'); // answered before reading the body; node drains it after
        req.resume();
        req.on('end', () => { earlyBodyDrained = true; });
        return;
      }
      req.resume();
      req.on('end', () => (hold ? held.push(res) : res.end('ok')));
    },
  });
  await server.listen();
  client = createMtlsHttpsClient({
    source: new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/client`), bundleSetOf(ca)),
    authorizeServer: authorizeIf((id) => id.toString() === SERVER_ID),
    connections: 4,
  });
});

after(async () => {
  await client.close();
  for (const r of held) r.destroy();
  await server.close();
});

async function get(signal?: AbortSignal): Promise<string> {
  const res = await client.request({
    origin: `https://127.0.0.1:${server.port}`,
    path: '/x',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Buffer.from('{}'),
    ...(signal ? { signal } : {}),
  });
  let text = '';
  for await (const c of res.body) text += String(c);
  return `${res.statusCode} ${text}`;
}

test('40 parallel requests with connections: 4 → all answered over at most 4 connections', async () => {
  const answers = await Promise.all(Array.from({ length: 40 }, () => get()));
  assert.deepEqual(new Set(answers), new Set(['200 ok']));
  assert.ok(sockets.size >= 1 && sockets.size <= 4, `${sockets.size} connections`);
});

test('a request waiting for a free connection rejects with its abort reason; the slot is not lost', async () => {
  hold = true;
  const busy = Array.from({ length: 4 }, () => get().catch(() => 'failed'));
  const deadline = Date.now() + 30_000;
  while (held.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(held.length, 4, 'four requests hold the four connections');
  const ac = new AbortController();
  const waiting = get(ac.signal);
  const reason = new Error('gave up waiting');
  ac.abort(reason);
  await assert.rejects(waiting, (e: unknown) => e === reason);
  hold = false;
  for (const r of held.splice(0)) r.end('late');
  assert.deepEqual(await Promise.all(busy), ['200 late', '200 late', '200 late', '200 late']);
  assert.equal(await get(), '200 ok');
});

test('an answer before the request body was all sent leaves no headers timer armed', async () => {
  const HEADERS_MS = 3_456_789; // marks this request's timers
  const timers: Array<{ _idleTimeout: number; _destroyed: boolean }> = [];
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      const t = resource as { _idleTimeout: number; _destroyed: boolean };
      if (type === 'Timeout') timers.push(t);
    },
  }).enable();
  try {
    const res = await client.request({
      origin: `https://127.0.0.1:${server.port}`,
      path: '/early',
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(8 << 20), // far more than the socket buffers: still sending when the answer comes
      headersTimeout: HEADERS_MS,
    });
    let text = '';
    for await (const c of res.body) text += String(c);
    assert.equal(`${res.statusCode} ${text}`, '400 early');
    // The server drains the unread body, so the request's 'finish' follows the answer: once the
    // server has the whole body, the client has sent it all.
    const deadline = Date.now() + 30_000;
    while (!earlyBodyDrained && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(earlyBodyDrained, 'the server drained the body');
    await new Promise((r) => setTimeout(r, 10));
  } finally {
    hook.disable();
  }
  const armed = timers.filter((t) => t._idleTimeout === HEADERS_MS && !t._destroyed);
  for (const t of armed) clearTimeout(t as unknown as NodeJS.Timeout); // a failure must not hold the file for an hour
  assert.equal(armed.length, 0, 'a headers timer is still armed after the answer');
});
