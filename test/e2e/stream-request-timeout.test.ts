/**
 * SPIKE_HTTP_SERVER_REQUEST_TIMEOUT against spike-nexus: the listener's bound on receiving a
 * whole request (Node's `requestTimeout`, 60 s by default, like Vault's `http_read_timeout`).
 * A cipher stream upload sent steadily above the minimum pace is cut when it outlasts the bound,
 * and read whole when the bound is off (`0`), for uploads longer than any bound would allow.
 */
import tls from 'node:tls';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Stack } from '../helpers/stack.js';
import { drip } from '../helpers/drip.js';
import { WorkloadX509Source, svidChainPem, svidPrivateKeyPem } from '../../src/spiffe/index.js';

const NEXUS_ID = 'spiffe://spike.ist/spike/nexus';
const stacks: Stack[] = [];
after(async () => {
  for (const s of stacks) await s.stop();
});

/** A 384 KiB stream encrypt sent at 128 KiB/s (8 times the minimum pace): about 3 s. */
async function slowStreamEncrypt(requestTimeout: string): Promise<{ answer: string; bytesSent: number; size: number }> {
  const stack = await Stack.start({ backend: 'memory', nexusEnv: { SPIKE_HTTP_SERVER_REQUEST_TIMEOUT: requestTimeout } });
  stacks.push(stack);
  const source = await WorkloadX509Source.open({ endpoint: stack.socket('pilot'), timeoutMs: 15_000 });
  try {
    const svid = source.getX509Svid();
    const socket = tls.connect({
      host: '127.0.0.1', port: Number(new URL(stack.nexusUrl).port), minVersion: 'TLSv1.3',
      cert: svidChainPem(svid), key: svidPrivateKeyPem(svid),
      ca: source.bundleSet().allAuthorities().map((c) => c.toString()),
      checkServerIdentity: (_h, cert) => (cert.subjectaltname === `URI:${NEXUS_ID}` ? undefined : new Error('not the expected server')),
    });
    const body = Buffer.alloc(384 * 1024, 0x61);
    const head = `POST /v1/cipher/encrypt HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    const r = await drip(socket, 'secureConnect', { head, body, step: 32 * 1024, everyMs: 250, giveUpMs: 60_000 });
    return { answer: r.answer, bytesSent: r.bytesSent, size: body.length };
  } finally {
    source.close();
  }
}

test('SPIKE_HTTP_SERVER_REQUEST_TIMEOUT: a steady stream upload that outlasts the bound is cut; with 0 it is read whole', async () => {
  const cut = await slowStreamEncrypt('1s');
  assert.ok(cut.bytesSent < cut.size, `cut before the whole body was sent (${cut.bytesSent} of ${cut.size} bytes)`);
  const whole = await slowStreamEncrypt('0');
  assert.equal(whole.bytesSent, whole.size);
  assert.match(whole.answer, /^HTTP\/1\.1 200 /, whole.answer.slice(0, 80));
  // the whole ciphertext came back: more answer bytes than plaintext bytes sent (nonce, tags, framing)
  assert.ok(Buffer.byteLength(whole.answer, 'latin1') > whole.size, `answer ${Buffer.byteLength(whole.answer, 'latin1')} bytes`);
});
