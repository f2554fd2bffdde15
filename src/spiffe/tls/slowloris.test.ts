/**
 * FI-07 (short form, in-process, real mTLS server and test PKI): slowloris while a warm client
 * runs. Verified TLS connections dribble one header byte at a time, never finishing the
 * request head; plain TCP sockets never send a ClientHello. The headers timeout answers each
 * dribbler 408 and closes it, the handshake timeout closes each silent socket — neither
 * before its timeout (timers never fire early), each within a bound that only catches a hang;
 * the warm client on a keep-alive connection gets every answer meanwhile; the process's
 * file descriptors return to their baseline afterwards.
 *
 * Scaled down from the catalogue (500 + 200 sockets, a byte every 5 s against timeouts
 * ≤ 10 s) to keep the suite short: 60 + 60 sockets, a byte every 400 ms against 2 s
 * timeouts. The handshake budgets are raised so every silent socket is held until its
 * timeout (the budgets themselves: malformed-input.test.ts, attack-connection-flood).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import { createMtlsDispatcher } from './dialer.js';
import { StaticX509Source } from '../source.js';
import { authorizeAny } from '../authorize.js';
import type { X509Svid } from '../svid.js';
import type { X509BundleSet } from '../bundle.js';
import { issueLeaf, type TestCa } from '../../../test/helpers/pki.js';
import { createMtlsPki, CLIENT_ID, startServer, pemKey, sleep } from '../../../test/helpers/mtls-harness.js';
import { silentSocket } from '../../../test/helpers/flood.js';

/** The attack's scale and the server's timeouts; a close later than timeout + SLACK_MS is a hang (loaded machine included). */
const { DRIBBLERS, SILENT, HEADERS_MS, HANDSHAKE_MS, BYTE_EVERY_MS, SLACK_MS } = {
  DRIBBLERS: 60, SILENT: 60, HEADERS_MS: 2_000, HANDSHAKE_MS: 2_000, BYTE_EVERY_MS: 400, SLACK_MS: 8_000,
} as const;

let ca1: TestCa, serverSvid: X509Svid, clientSvid: X509Svid, both: X509BundleSet;
before(async () => ({ ca1, serverSvid, clientSvid, both } = await createMtlsPki()));

const openFds = (): number => fs.readdirSync('/proc/self/fd').length;

interface Closed { afterMs: number; text: string; bytesSent: number }

/** A verified TLS connection that sends a request head one byte every BYTE_EVERY_MS, forever. */
function dribbler(port: number, cert: { pem: string; key: string }): Promise<Closed> {
  return new Promise((resolve) => {
    const head = Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(4096)}`);
    const chunks: Buffer[] = [];
    let sent = 0;
    let t0 = 0;
    let timer: NodeJS.Timeout | undefined;
    const s = tls.connect({ host: '127.0.0.1', port, ca: [ca1.pem], cert: cert.pem, key: cert.key, checkServerIdentity: () => undefined });
    const drip = (): void => {
      if (s.destroyed || sent >= head.length) return;
      s.write(head.subarray(sent, sent + 1));
      sent++;
      timer = setTimeout(drip, BYTE_EVERY_MS);
    };
    s.on('secureConnect', () => { t0 = performance.now(); drip(); });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => { /* closed by the server */ });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ afterMs: t0 === 0 ? -1 : performance.now() - t0, text: Buffer.concat(chunks).toString('latin1'), bytesSent: sent });
    });
    setTimeout(() => s.destroy(), HEADERS_MS + 60_000).unref();
  });
}

test('FI-07: header dribblers get 408 at the headers timeout, silent sockets close at the handshake timeout, the warm client is served throughout, fds return to baseline', { timeout: 120_000 }, async () => {
  const h = await startServer(serverSvid, both, {
    headersTimeoutMs: HEADERS_MS, handshakeTimeoutMs: HANDSHAKE_MS,
    maxHandshakes: 4 * (DRIBBLERS + SILENT), maxHandshakesPerSource: 4 * (DRIBBLERS + SILENT),
  });
  const leaf = await issueLeaf(ca1, { uris: [CLIENT_ID] });
  const cert = { pem: leaf.pem, key: pemKey(leaf.key) };
  const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny() });
  const url = `https://127.0.0.1:${h.server.port}/`;
  try {
    // Warm up: the client's keep-alive connection exists before the attack.
    const warm = await request(url, { dispatcher });
    assert.equal(warm.statusCode, 200);
    await warm.body.dump();
    const baseline = openFds();

    let attacking = true;
    const latencies: number[] = [];
    const failures: string[] = [];
    const warmClient = (async () => {
      while (attacking) {
        const t = performance.now();
        try {
          const r = await request(url, { dispatcher });
          await r.body.dump();
          if (r.statusCode !== 200) failures.push(`status ${r.statusCode}`);
        } catch (e) {
          failures.push((e as { code?: string }).code ?? String(e));
        }
        latencies.push(performance.now() - t);
        await sleep(20);
      }
    })();

    const [dribbled, quiet] = await Promise.all([
      Promise.all(Array.from({ length: DRIBBLERS }, () => dribbler(h.server.port, cert))),
      Promise.all(Array.from({ length: SILENT }, () => silentSocket(h.server.port, HANDSHAKE_MS + 60_000))),
    ]);
    attacking = false;
    await warmClient;

    for (const d of dribbled) {
      assert.ok(d.afterMs >= HEADERS_MS - 50, `a dribbler was closed before the headers timeout (${Math.round(d.afterMs)} ms, ${d.bytesSent} bytes)`);
      assert.ok(d.afterMs < HEADERS_MS + SLACK_MS, `a dribbler lived ${Math.round(d.afterMs)} ms`);
      assert.match(d.text, /^HTTP\/1\.1 408 /, 'answered 408');
      assert.ok(d.bytesSent < 4096, 'the dribble was still going when the server closed it');
    }
    for (const ms of quiet) {
      assert.ok(ms >= HANDSHAKE_MS - 50, `a silent socket was closed before the handshake timeout (${Math.round(ms)} ms)`);
      assert.ok(ms < HANDSHAKE_MS + SLACK_MS, `a silent socket lived ${Math.round(ms)} ms`);
    }
    assert.deepEqual(h.seen.filter((p) => p !== CLIENT_ID), [], 'no attacker request reached the handler');
    assert.deepEqual(failures, [], 'the warm client never failed');
    latencies.sort((x, y) => x - y);
    const p99 = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
    assert.ok(latencies.length >= 20, `warm requests: ${latencies.length}`);
    // Liveness ceiling, not a speed figure (the catalogue's 10 ms is a bench figure): this one
    // process runs the server, the warm client and all 120 attackers' TLS, and on a shared,
    // saturated machine one warm request measured 1.3 s. Below the attack's 2 s timeouts, so a
    // warm request that had to wait for the attackers to be cut off still fails it.
    assert.ok(p99 < Math.min(HEADERS_MS, HANDSHAKE_MS) - 100, `warm client p99 ${p99.toFixed(1)} ms`);

    // Every attack socket is gone: back to the baseline within 15 s.
    const deadline = Date.now() + 15_000;
    while (openFds() > baseline + 2 && Date.now() < deadline) await sleep(50);
    assert.ok(openFds() <= baseline + 2, `fds: ${openFds()} after, ${baseline} before`);
  } finally {
    await dispatcher.close();
    await h.server.close();
  }
});
