/**
 * The `node:https` mTLS client (https-client.ts) against a real mTLS server: a burst of
 * parallel requests opens at most `connections` connections (the others wait for a free one,
 * none is refused), keep-alive reuses them, and a request still waiting for a connection
 * honours its abort signal.
 */
import { test, before, after } from 'node:test';
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

before(async () => {
  ca = await createCa(TD);
  server = createMtlsServer({
    source: new StaticX509Source(await makeSvid(ca, SERVER_ID), bundleSetOf(ca)),
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ component: 'https-client-test', level: 'silent' }),
    handler: (req, res) => {
      sockets.add(req.socket);
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
