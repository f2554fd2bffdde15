/**
 * ATTACK: a request body trickled one byte per second (SEC-02, FI-08 short form) against the
 * real spike-nexus over real mTLS. Node's own request timeout would hold such a request for a
 * minute and then drop the connection without an answer; the router's JSON body deadline
 * answers 408 (`{"err":"api_bad_request","message":"request body timed out"}`) within the
 * catalogue's 15 s ceiling, closes the connection, stores nothing, and a well-behaved client
 * is served meanwhile.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { Stack } from '../helpers/stack.js';
import { WorkloadX509Source, svidChainPem, svidPrivateKeyPem } from '../../src/spiffe/index.js';
import { type RawClient, rawClient } from './secrets-helpers.js';

const NEXUS_ID = 'spiffe://spike.ist/spike/nexus';

let stack: Stack;
let source: WorkloadX509Source;
let pilot: RawClient;

before(async () => {
  stack = await Stack.start({ backend: 'memory' });
  source = await WorkloadX509Source.open({ endpoint: stack.socket('pilot'), timeoutMs: 15_000 });
  pilot = await rawClient(stack, 'pilot');
});

after(async () => {
  await pilot?.close();
  source?.close();
  await stack?.stop();
});

interface Trickled {
  answer: string;
  answeredAfterMs: number;
  bytesSent: number;
}

/** Sends the headers, then the body one byte per `everyMs`; resolves once the server closes. */
function trickle(path: string, body: string, everyMs: number, giveUpMs: number): Promise<Trickled> {
  const svid = source.getX509Svid();
  const port = Number(new URL(stack.nexusUrl).port);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let answer = '';
    let answeredAfterMs = -1;
    let sent = 0;
    const socket = tls.connect({
      host: '127.0.0.1', port, minVersion: 'TLSv1.3',
      cert: svidChainPem(svid), key: svidPrivateKeyPem(svid),
      ca: source.bundleSet().allAuthorities().map((c) => c.toString()),
      checkServerIdentity: (_h, cert) => (cert.subjectaltname === `URI:${NEXUS_ID}` ? undefined : new Error('not Nexus')),
    });
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${giveUpMs} ms (answer so far: ${JSON.stringify(answer.slice(0, 80))})`));
    }, giveUpMs);
    let drip: NodeJS.Timeout | undefined;
    socket.on('secureConnect', () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
      drip = setInterval(() => {
        if (sent < body.length && socket.writable) socket.write(body[sent++]!);
      }, everyMs);
    });
    socket.on('data', (d: Buffer) => {
      if (answeredAfterMs < 0) answeredAfterMs = performance.now() - t0;
      answer += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(drip);
      clearTimeout(giveUp);
      resolve({ answer, answeredAfterMs, bytesSent: sent });
    });
  });
}

test('SEC-02 / FI-08: a JSON body trickled at 1 byte/s gets 408 with the error shape within 15 s and the connection is closed; nothing is stored', async () => {
  const body = JSON.stringify({ path: 'slow/body', values: { k: 'v'.repeat(100) } });
  const pending = trickle('/v1/store/secrets', body, 1_000, 40_000);
  // A well-behaved client is served while the trickle holds its request open.
  const put = await pilot.post('/v1/store/secrets', { path: 'fast/ok', values: { k: 'v' } });
  assert.equal(put.status, 200);
  const r = await pending;
  assert.match(r.answer, /^HTTP\/1\.1 408 /, r.answer.slice(0, 80));
  assert.match(r.answer, /\r\nConnection: close\r\n/i);
  const json = r.answer.slice(r.answer.indexOf('\r\n\r\n') + 4);
  assert.deepEqual(JSON.parse(json), { err: 'api_bad_request', message: 'request body timed out' });
  assert.ok(r.answeredAfterMs > 0 && r.answeredAfterMs < 15_000, `answered after ${r.answeredAfterMs.toFixed(0)} ms`);
  assert.ok(r.bytesSent < body.length, 'the whole body was sent: nothing was timed out');
  const list = await pilot.post('/v1/store/secrets?action=list', {});
  assert.deepEqual(list.json, { keys: ['fast/ok'] });
});
