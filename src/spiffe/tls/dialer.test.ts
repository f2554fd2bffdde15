/**
 * The client dispatcher checks the server (TLS-21, TLS-08, TLS-04 from the client side) before
 * any request byte is sent; no hostname check.
 * In-process with StaticX509Source and the test PKI (test/helpers/mtls-harness.ts); the
 * real-process version is test/e2e/mtls.test.ts.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { createMtlsDispatcher } from './dialer.js';
import { poolCount, SWEEP_ABOVE } from './pools-dispatcher.js';
import { PeerRejectedError } from './peer.js';
import { SpiffeId, TrustDomain } from '../id.js';
import { StaticX509Source } from '../source.js';
import { authorizeAny, authorizeId, authorizeMemberOf } from '../authorize.js';
import type { X509Svid } from '../svid.js';
import type { X509BundleSet } from '../bundle.js';
import { issueLeaf, KeyUsage, makeSvid, type TestCa } from '../../../test/helpers/pki.js';
import {
  createMtlsPki, TD1, SERVER_ID, startServer, rawSvid, waitFor,
} from '../../../test/helpers/mtls-harness.js';

let ca1: TestCa, ca2: TestCa, serverSvid: X509Svid, clientSvid: X509Svid, both: X509BundleSet;
before(async () => ({ ca1, ca2, serverSvid, clientSvid, both } = await createMtlsPki()));

describe('client side: the server is checked before any request byte is sent', () => {
  test('TLS-21: server with a valid SVID of the wrong identity → PeerRejectedError, no request reaches it, the body is never read', async () => {
    const h = await startServer(await makeSvid(ca1, `spiffe://${TD1}/workload/not-nexus`), both);
    const source = new StaticX509Source(clientSvid, both);
    const dispatcher = createMtlsDispatcher({ source, authorizeServer: authorizeId(SpiffeId.parse(SERVER_ID)) });
    let bodyPulled = false;
    const body = new Readable({
      read() {
        bodyPulled = true;
        this.push('{"shard":"secret"}');
        this.push(null);
      },
    });
    try {
      await assert.rejects(
        request(`https://127.0.0.1:${h.server.port}/v1/store/secrets`, { dispatcher, method: 'POST', body }),
        (err: unknown) => err instanceof PeerRejectedError && err.code === 'tls_peer_rejected' && err.reason === 'unauthorized',
      );
      assert.equal(bodyPulled, false, 'the request body was never read');
      assert.deepEqual(h.seen, [], 'the server handler never ran');
      assert.ok(!/workload|nexus/.test(new PeerRejectedError('unauthorized').message), 'the error echoes no ID');
    } finally {
      await dispatcher.close();
      await h.server.close();
    }
  });

  test('TLS-08 (client side): a server presenting a CA:TRUE leaf is rejected by the client', async () => {
    const leaf = await issueLeaf(ca1, { uris: [SERVER_ID], isCA: true, keyUsages: KeyUsage.digitalSignature | KeyUsage.keyCertSign });
    const h = await startServer(rawSvid(leaf, SERVER_ID), both);
    const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny() });
    try {
      await assert.rejects(
        request(`https://127.0.0.1:${h.server.port}/`, { dispatcher }),
        (err: unknown) => err instanceof PeerRejectedError && err.reason === 'svid_leaf_is_ca',
      );
      assert.deepEqual(h.seen, []);
    } finally {
      await dispatcher.close();
      await h.server.close();
    }
  });

  test('TLS-04 (client side): a server leaf from td2 claiming a td1 ID is rejected', async () => {
    const leaf = await issueLeaf(ca2, { uris: [SERVER_ID] });
    const h = await startServer(rawSvid(leaf, SERVER_ID), both);
    const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeMemberOf(TrustDomain.parse(TD1)) });
    try {
      await assert.rejects(
        request(`https://127.0.0.1:${h.server.port}/`, { dispatcher }),
        (err: unknown) => err instanceof PeerRejectedError && err.reason === 'svid_untrusted_chain',
      );
      assert.deepEqual(h.seen, []);
    } finally {
      await dispatcher.close();
      await h.server.close();
    }
  });

  test('no hostname check: the server is identified by SPIFFE ID whatever the URL host', async () => {
    const h = await startServer(serverSvid, both);
    const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeId(SpiffeId.parse(SERVER_ID)) });
    try {
      const res = await request(`https://localhost:${h.server.port}/`, { dispatcher });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    } finally {
      await dispatcher.close();
      await h.server.close();
    }
  });
});

describe('client side: a server restart', () => {
  test('after the server restarts under load, each pool reconnects once: no handshake storm (undici 7 Agent closed and replaced its pools over and over)', async () => {
    const source = new StaticX509Source(clientSvid, both);
    let h = await startServer(serverSvid, both);
    const port = h.server.port;
    // Several dispatchers in one process (several clients of one app, a Nexus and its Keepers)
    // share the handshake gate (dial-gate.ts), so their dials queue: the undici Agent's pool
    // bookkeeping then closed each new pool while its dials were in flight, and every
    // connection it made was destroyed at once (measured: 2,878 connections for 3,000 requests).
    const dispatchers = Array.from({ length: 8 }, () => createMtlsDispatcher({ source, authorizeServer: authorizeId(SpiffeId.parse(SERVER_ID)), connections: 4 }));
    let running = true;
    let ok = 0;
    let failed = 0;
    const worker = async (d: (typeof dispatchers)[number]): Promise<void> => {
      while (running) {
        try {
          const r = await request(`https://127.0.0.1:${port}/`, { dispatcher: d, method: 'POST', body: '{}' });
          await r.body.text();
          if (r.statusCode === 200) ok++;
        } catch {
          failed++;
        }
        await new Promise((r) => setTimeout(r, 2 + Math.random() * 4));
      }
    };
    const workers = Array.from({ length: 64 }, (_, i) => worker(dispatchers[i % dispatchers.length]!));
    try {
      await waitFor(() => ok >= 500, 'requests before the restart');
      await h.server.close();
      const failedBefore = failed;
      await waitFor(() => failed >= failedBefore + 100, 'requests refused while the server is down');
      h = await startServer(serverSvid, both, { port });
      await waitFor(() => h.remotePorts.length >= 100, 'requests after the restart');
      const start = h.remotePorts.length;
      await waitFor(() => h.remotePorts.length >= start + 3000, '3,000 more requests', 120_000);
      // Each new client port is a new TLS connection: 8 pools of 4 under steady load reuse theirs.
      const ports = new Set(h.remotePorts.slice(start));
      assert.ok(ports.size <= 64, `${ports.size} connections for 3,000 requests after the restart (pools: 32 connections)`);
    } finally {
      running = false;
      await Promise.all(workers);
      await Promise.all(dispatchers.map((d) => d.close()));
      await h.server.close();
    }
  });
});

describe('client side: the dispatcher behaves as undici\'s own dispatchers do', () => {
  test('events re-emitted; a request after close() fails through its handler (its stream body destroyed), never a throw; close() through compose() works', async () => {
    const h = await startServer(serverSvid, both);
    const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeId(SpiffeId.parse(SERVER_ID)) });
    const composed = dispatcher.compose((dispatch) => dispatch);
    try {
      let connects = 0;
      dispatcher.on('connect', (_origin, targets) => {
        connects++;
        assert.equal(targets[0], dispatcher, 'this dispatcher first among the targets');
      });
      const r = await request(`https://127.0.0.1:${h.server.port}/`, { dispatcher: composed, method: 'POST', body: '{}' });
      await r.body.text();
      assert.equal(r.statusCode, 200);
      assert.equal(connects, 1);
      await composed.close(); // a Proxy: state under #private fields threw here
      assert.equal((dispatcher as unknown as { closed: boolean }).closed, true);
      const body = new Readable({ read() { this.push('{}'); this.push(null); } });
      await assert.rejects(request(`https://127.0.0.1:${h.server.port}/`, { dispatcher, method: 'POST', body }), (e: unknown) => (e as { code?: string }).code === 'UND_ERR_CLOSED');
      assert.equal(body.destroyed, true, 'the refused request\'s body was destroyed');
    } finally {
      await dispatcher.destroy().catch(() => undefined);
      await h.server.close();
    }
  });

  test('pools for origins no longer used are dropped past ' + String(SWEEP_ABOVE) + ' origins (memory stays bounded)', async () => {
    const dispatcher = createMtlsDispatcher({ source: new StaticX509Source(clientSvid, both), authorizeServer: authorizeAny(), connectTimeoutMs: 2000 });
    try {
      // Closed ports on the loopback: each origin's dial is refused at once, leaving an idle pool.
      for (let i = 0; i < SWEEP_ABOVE * 2; i++) {
        await assert.rejects(request(`https://127.0.0.1:${1 + i}/`, { dispatcher }));
        assert.ok(poolCount(dispatcher) <= SWEEP_ABOVE + 1, `${poolCount(dispatcher)} pools after ${i + 1} origins`);
      }
    } finally {
      await dispatcher.close();
    }
  });
});
