/**
 * ATTACK: a connection stays authorised after its SVID expired or its CA was withdrawn.
 *
 * Reproduction (before the fix): open one TLS connection to Nexus with a superuser SVID that
 * lives a few seconds, keep it alive, and keep sending requests after `notAfter` (or after the
 * CA that issued it has left the trust bundle): every request kept getting 200, because the
 * caller's identity was checked only at the handshake. In SPIFFE, short SVID lifetimes and
 * bundle changes are the revocation mechanisms, so this defeated revocation.
 *
 * After: each request re-checks the connection's grant (validity window of the verified path,
 * anchor still in the current bundle of the peer's trust domain); a lapsed grant gets 401
 * and the connection is closed, and idle connections are closed by the server's sweep or at
 * once on a bundle update. Real processes: spike-agent, 3 Keepers, spike-nexus (SQLite),
 * Bootstrap; SVIDs minted from the agent's own CA so the stack trusts them.
 */
import 'reflect-metadata';
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Stack, TD } from '../helpers/stack.js';
import { issueLeaf, loadCa, type TestCa } from '../helpers/pki.js';
import { ConnectionClosedError, RawHttpsConnection } from '../helpers/raw-https.js';

const SUPERUSER = `spiffe://${TD}/spike/pilot/role/superuser`;
const NEXUS = `spiffe://${TD}/spike/nexus`;
const LIST = '/v1/store/secrets?action=list';
const SHARD = '/v1/store/shard';

let stack: Stack;
let ca: TestCa;

async function agentCa(): Promise<TestCa> {
  const dir = path.join(stack.dir, 'agent');
  return loadCa(TD, fs.readFileSync(path.join(dir, 'ca.key')), fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8'));
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

async function connectAs(issuer: TestCa, id: string, url: string, lifetimeMs: number): Promise<{ conn: RawHttpsConnection; notAfter: number }> {
  // Not backdated, and whole seconds (X.509 times): the lifetime is exactly what the test says.
  const now = Math.floor(Date.now() / 1000) * 1000;
  const notAfter = now + lifetimeMs;
  const leaf = await issueLeaf(issuer, { uris: [id], notBefore: new Date(now - 1_000), notAfter: new Date(notAfter) });
  const conn = await RawHttpsConnection.open({
    host: '127.0.0.1', port: portOf(url), cert: leaf.pem, key: leaf.key.export({ format: 'pem', type: 'pkcs8' }) as string, ca: issuer.pem,
  });
  return { conn, notAfter };
}

/**
 * Sends requests on the one connection until it is closed. Returns the time of the last 200
 * and whether any non-200 answer was a 401.
 */
async function hammerUntilClosed(conn: RawHttpsConnection, route: string, body: string, deadlineMs: number): Promise<{ last200: number; statuses: number[] }> {
  let last200 = 0;
  const statuses: number[] = [];
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    try {
      const a = await conn.send(route, body);
      statuses.push(a.status);
      if (a.status === 200) last200 = Date.now();
    } catch (e) {
      if (e instanceof ConnectionClosedError) return { last200, statuses };
      throw e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`the server kept the connection open for ${deadlineMs} ms; statuses ${[...new Set(statuses)].join(',')}`);
}

before(async () => {
  stack = await Stack.start();
  ca = await agentCa();
});
after(async () => {
  await stack?.stop();
});

// The kept-alive Nexus and Keeper cases wait on their SVIDs' expiry at the same time (different
// servers, connections and logs); the idle case, which reads Nexus's log, runs on its own.
describe('stale identity on kept-alive connections (Nexus and Keeper at once)', { concurrency: true }, () => {
  test('ATTACK stale identity: a kept-alive Nexus connection loses access when its client SVID expires', async () => {
    const { conn, notAfter } = await connectAs(ca, SUPERUSER, stack.nexusUrl, 4_000);
    try {
      const first = await conn.send(LIST, '{}');
      assert.equal(first.status, 200, 'the fresh SVID is accepted');
      const r = await hammerUntilClosed(conn, LIST, '{}', 60_000);
      assert.ok(r.last200 <= notAfter + 1_000, `no 200 after notAfter (last 200 ${r.last200 - notAfter} ms after it)`);
      assert.ok(r.statuses.every((s) => s === 200 || s === 401), `only 200 then 401: ${r.statuses.join(',')}`);
    } finally {
      conn.close();
    }
  });

  test('ATTACK stale identity: a kept-alive Keeper connection loses access when its client SVID expires', async () => {
    // A Nexus-identity connection to a Keeper (the only identity the Keeper answers shards to).
    const { conn, notAfter } = await connectAs(ca, NEXUS, stack.keeperUrls[0]!, 4_000);
    try {
      const first = await conn.send(SHARD, '{}');
      assert.equal(first.status, 200);
      const r = await hammerUntilClosed(conn, SHARD, '{}', 60_000);
      assert.ok(r.last200 <= notAfter + 1_000, `no shard handed out after notAfter (last ${r.last200 - notAfter} ms after it)`);
    } finally {
      conn.close();
    }
  });
});

test('ATTACK stale identity: an idle Nexus connection with an expired SVID is closed by the server', async () => {
  const { conn, notAfter } = await connectAs(ca, SUPERUSER, stack.nexusUrl, 3_000);
  try {
    stack.clearLogs('nexus');
    assert.equal((await conn.send(LIST, '{}')).status, 200);
    await conn.waitClosed(60_000);
    assert.ok(Date.now() >= notAfter - 1_000, 'closed at expiry, not long before');
    // Closed because the grant lapsed (not by the keep-alive timeout, which would close it too).
    assert.match(stack.logs('nexus'), /"reason":"svid_expired"/);
  } finally {
    conn.close();
  }
});

test('ATTACK withdrawn CA: connections anchored in a CA removed from the bundle are closed at once (Nexus and Keeper)', async () => {
  const nexusConn = (await connectAs(ca, SUPERUSER, stack.nexusUrl, 3_600_000)).conn;
  const keeperConn = (await connectAs(ca, NEXUS, stack.keeperUrls[1]!, 3_600_000)).conn;
  try {
    assert.equal((await nexusConn.send(LIST, '{}')).status, 200);
    assert.equal((await keeperConn.send(SHARD, '{}')).status, 200);
    stack.clearLogs('nexus');
    // The agent comes back with a new CA: every bundle now holds only the new one.
    await stack.restartAgent({ newCa: true });
    const newCa = await agentCa();
    assert.notEqual(newCa.cert.fingerprint256, ca.cert.fingerprint256);
    await nexusConn.waitClosed(60_000);
    await keeperConn.waitClosed(60_000);
    assert.match(stack.logs('nexus'), /anchor_withdrawn/);
    // The old CA cannot come back in through a new connection either.
    await assert.rejects(async () => {
      const again = await connectAs(ca, SUPERUSER, stack.nexusUrl, 3_600_000);
      try {
        await again.conn.send(LIST, '{}');
      } finally {
        again.conn.close();
      }
    });
    ca = newCa;
  } finally {
    nexusConn.close();
    keeperConn.close();
  }
});
