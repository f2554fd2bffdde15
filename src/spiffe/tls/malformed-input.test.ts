/**
 * Malformed and hostile input never crashes the server: garbage, stalled handshakes, slow
 * headers, handshake floods, close() with open connections, and the connection budgets.
 * In-process with StaticX509Source and the test PKI (test/helpers/mtls-harness.ts); the
 * real-process version is test/e2e/mtls.test.ts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { webcrypto } from 'node:crypto';
import { request } from 'undici';
import { createMtlsDispatcher } from './dialer.js';
import { INTERNAL_ERROR_BODY, MALFORMED_REQUEST_BODY } from '../../protocol/index.js';
import { StaticX509Source } from '../source.js';
import { authorizeAny } from '../authorize.js';
import type { X509Svid } from '../svid.js';
import type { X509BundleSet } from '../bundle.js';
import { issueLeaf, type TestCa } from '../../../test/helpers/pki.js';
import {
  createMtlsPki, CLIENT_ID, startServer, pemKey, rawRequest, waitFor, until,
} from '../../../test/helpers/mtls-harness.js';

let ca1: TestCa, serverSvid: X509Svid, clientSvid: X509Svid, both: X509BundleSet;
before(async () => ({ ca1, serverSvid, clientSvid, both } = await createMtlsPki()));

describe('malformed input never crashes the server', () => {
  test('garbage bytes, a partial hello and a stalled handshake are closed (the last after the handshake timeout); service continues', async () => {
    // Timing as structure: a connection closed before HS ms was not closed by the handshake
    // timeout (timers never fire early); one closed at or after it was. HS is long enough that
    // "closed at once" stays below it on a loaded machine; the upper bounds only catch a hang.
    const HS = 3_000;
    const h = await startServer(serverSvid, both, { handshakeTimeoutMs: HS });
    const port = h.server.port;
    const closedAfter = (payload: Buffer | null): Promise<number> => new Promise((resolve, reject) => {
      const t0 = Date.now();
      const s = net.connect(port, '127.0.0.1', () => { if (payload) s.write(payload); });
      s.on('error', () => { /* reset is fine */ });
      s.resume(); // read, so the server's FIN is seen
      s.on('close', () => resolve(Date.now() - t0));
      setTimeout(() => { s.destroy(); reject(new Error('not closed by the server')); }, HS + 60_000).unref();
    });
    try {
      const [garbage, random, partial, stalled] = await Promise.all([
        closedAfter(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff'.repeat(20), 'latin1')),
        closedAfter(Buffer.from(webcrypto.getRandomValues(new Uint8Array(4096)))),
        // A TLS record header announcing a ClientHello that never arrives.
        closedAfter(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])),
        closedAfter(null),
      ]);
      assert.ok(garbage < HS, `garbage closed before the handshake timeout (${garbage} ms)`);
      assert.ok(random < HS, `random bytes closed before the handshake timeout (${random} ms)`);
      assert.ok(partial >= HS - 50, `partial hello closed by the handshake timeout (${partial} ms)`);
      assert.ok(stalled >= HS - 50, `silent connection closed by the handshake timeout (${stalled} ms)`);
      assert.deepEqual(h.seen, []);
      const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny() });
      const res = await request(`https://127.0.0.1:${port}/`, { dispatcher });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
      await dispatcher.close();
    } finally {
      await h.server.close();
    }
  });

  test('slow headers: a verified connection that never finishes its headers gets 408 after headersTimeoutMs', async () => {
    const h = await startServer(serverSvid, both, { headersTimeoutMs: 500, requestTimeoutMs: 2_000 });
    const cl = await issueLeaf(ca1, { uris: [CLIENT_ID] });
    try {
      const t0 = Date.now();
      const text = await new Promise<string>((resolve) => {
        const chunks: Buffer[] = [];
        const s = tls.connect({ host: '127.0.0.1', port: h.server.port, ca: [ca1.pem], cert: cl.pem, key: pemKey(cl.key), checkServerIdentity: () => undefined });
        s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n'));
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('error', () => { /* closed */ });
        s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
        setTimeout(() => s.destroy(), 60_000).unref();
      });
      const elapsed = Date.now() - t0;
      assert.match(text, /^HTTP\/1\.1 408/);
      // Not before headersTimeoutMs; the upper bound only catches a hang (a loaded machine).
      assert.ok(elapsed >= 450 && elapsed < 30_000, `closed after ${elapsed} ms`);
      assert.deepEqual(h.seen, []);
    } finally {
      await h.server.close();
    }
  });

  test('a verified connection that sends nothing is closed after headersTimeoutMs', async () => {
    const h = await startServer(serverSvid, both, { headersTimeoutMs: 500, requestTimeoutMs: 2_000, keepAliveTimeoutMs: 10_000 });
    const cl = await issueLeaf(ca1, { uris: [CLIENT_ID] });
    try {
      const t0 = Date.now();
      let secured = 0;
      await new Promise<void>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port: h.server.port, ca: [ca1.pem], cert: cl.pem, key: pemKey(cl.key), checkServerIdentity: () => undefined });
        s.on('secureConnect', () => { secured = Date.now(); });
        s.on('error', () => { /* closed */ });
        s.resume();
        s.on('close', () => resolve());
        setTimeout(() => s.destroy(), 60_000).unref();
      });
      const elapsed = Date.now() - t0;
      assert.ok(secured > 0, 'handshake completed');
      // Not before headersTimeoutMs, and well before the 10 s keep-alive timeout (so it was the
      // headers timeout that closed it); generous for a loaded machine.
      assert.ok(elapsed >= 450 && elapsed < 9_000, `idle verified connection closed after ${elapsed} ms`);
    } finally {
      await h.server.close();
    }
  });

  test('a request line Node\'s parser refuses (unknown method token, bad framing), an Expect other than 100-continue (417) and a CONNECT are answered with the API\'s JSON error body', async () => {
    // Nexus and the Keepers pass the API's body (MALFORMED_REQUEST_BODY); the TLS layer knows no API.
    const h = await startServer(serverSvid, both, { malformedRequestBody: MALFORMED_REQUEST_BODY });
    const leaf = await issueLeaf(ca1, { uris: [CLIENT_ID] });
    const me = { ca: [ca1.pem], cert: leaf.pem, key: pemKey(leaf.key) };
    try {
      for (const [request, status] of [
        ['FOO /v1/store/secrets HTTP/1.1\r\nHost: test\r\n\r\n', 400],
        ['POST / HTTP/1.1\r\nHost: test\r\nContent-Length: x\r\n\r\n', 400],
        ['POST /v1/store/secrets HTTP/1.1\r\nHost: test\r\nExpect: foo\r\nContent-Length: 2\r\n\r\n{}', 417],
        ['CONNECT nexus:8553 HTTP/1.1\r\nHost: nexus:8553\r\n\r\n', 400],
      ] as const) {
        const r = await rawRequest(h.server.port, { ...me, request });
        assert.equal(r.status, status, JSON.stringify(request));
        assert.equal(r.body, '{"err":"api_bad_request"}', JSON.stringify(request));
      }
      assert.deepEqual(h.seen, [], 'the handler never saw them');
      assert.equal((await rawRequest(h.server.port, me)).status, 200, 'service continues');
    } finally {
      await h.server.close();
    }
  });

  test('a handler that fails outright gets the last-resort 500 with the body the server was given', async () => {
    const h = await startServer(serverSvid, both, { internalErrorBody: INTERNAL_ERROR_BODY, handler: () => Promise.reject(new Error('boom')) });
    const leaf = await issueLeaf(ca1, { uris: [CLIENT_ID] });
    try {
      const r = await rawRequest(h.server.port, { ca: [ca1.pem], cert: leaf.pem, key: pemKey(leaf.key) });
      assert.equal(r.status, 500);
      assert.equal(r.body, '{"err":"api_internal_error"}');
    } finally {
      await h.server.close();
    }
  });

  test('TLS-01/02 flood: 300 refused handshakes, then normal service (the listener never closes)', async () => {
    const h = await startServer(serverSvid, both);
    const selfSigned = await issueLeaf(undefined, { uris: [CLIENT_ID], selfSigned: true });
    const bad = { ca: [ca1.pem], cert: selfSigned.pem, key: pemKey(selfSigned.key) };
    try {
      let refused = 0;
      for (let batch = 0; batch < 10; batch++) {
        const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => rawRequest(h.server.port, i % 2 ? bad : { ca: [ca1.pem] })));
        refused += rs.filter((r) => r.status === undefined).length;
      }
      assert.equal(refused, 300);
      assert.deepEqual(h.seen, []);
      const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny() });
      const res = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
      await dispatcher.close();
    } finally {
      await h.server.close();
    }
  });

  test('close(): resolves promptly with an idle keep-alive connection open; lets an in-flight request finish', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => { release = r; });
    let slowArrived = false;
    const h = await startServer(serverSvid, both, {
      handler: async (req, res) => {
        if (req.url === '/slow') {
          slowArrived = true;
          await gate;
        }
        res.end('done');
      },
    });
    const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny(), connections: 2, keepAliveTimeoutMs: 30_000 });
    try {
      const first = await request(`https://127.0.0.1:${h.server.port}/fast`, { dispatcher });
      await first.body.dump();
      const slow = request(`https://127.0.0.1:${h.server.port}/slow`, { dispatcher });
      await until(() => slowArrived, 30_000, 'the slow request to reach its handler');
      const t0 = Date.now();
      const closing = h.server.close();
      setTimeout(release, 300);
      const res = await slow;
      assert.equal(await res.body.text(), 'done', 'in-flight request completed');
      await closing;
      const elapsed = Date.now() - t0;
      // "Promptly" as structure: close() did not wait for the idle keep-alive connection's 30 s
      // timeout (the bound is far below it, and far above a loaded machine's noise).
      assert.ok(elapsed < 15_000, `close took ${elapsed} ms`);
      // the raw TCP socket reports 'close' a tick after the TLS socket
      await until(() => h.server.connections() === 0, 30_000, 'no open connections');
    } finally {
      release();
      await dispatcher.close();
      await h.server.close();
    }
  });

  test('handshake budget: idle sockets beyond it evict the oldest idle ones, never block a real client', async () => {
    const h = await startServer(serverSvid, both, { maxHandshakes: 4, maxHandshakesPerSource: 4, handshakeTimeoutMs: 30_000 });
    const held: net.Socket[] = [];
    let closedByServer = 0;
    try {
      for (let i = 0; i < 10; i++) {
        const s = net.connect(h.server.port, '127.0.0.1');
        s.on('error', () => { /* reset */ });
        s.on('close', () => { closedByServer++; });
        held.push(s);
        await new Promise((r) => s.once('connect', r));
      }
      await waitFor(() => closedByServer >= 6, 'the six oldest idle sockets were evicted');
      assert.ok(h.server.handshaking() <= 4);
      assert.ok(h.logs().some((l) => l['event'] === 'tls_handshake_evicted_per_source' || l['event'] === 'tls_handshake_evicted'));
      // A real client still gets in (it evicts an idle socket, then finishes in milliseconds).
      const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny() });
      const res = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
      await dispatcher.close();
    } finally {
      for (const s of held) s.destroy();
      await h.server.close();
    }
  });

  test('verified connection limit: a newcomer closes the longest-idle verified connection; it never waits for a slot', async () => {
    const h = await startServer(serverSvid, both, { maxConnections: 1 });
    const a = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny(), connections: 1, keepAliveTimeoutMs: 60_000 });
    const b = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny(), connections: 1, keepAliveTimeoutMs: 60_000 });
    try {
      const r1 = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher: a });
      assert.equal(r1.statusCode, 200);
      await r1.body.dump();
      const portA = h.remotePorts[h.remotePorts.length - 1];
      const r2 = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher: b });
      assert.equal(r2.statusCode, 200, 'the newcomer got in');
      await r2.body.dump();
      await waitFor(() => h.server.connections() === 1, 'the idle connection made room');
      assert.ok(h.logs().some((l) => l['event'] === 'tls_connection_evicted_idle'));
      const r3 = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher: a });
      assert.equal(r3.statusCode, 200, 'the evicted client simply reconnects');
      await r3.body.dump();
      assert.notEqual(h.remotePorts[h.remotePorts.length - 1], portA, 'on a new connection');
    } finally {
      await a.close();
      await b.close();
      await h.server.close();
    }
  });
});
