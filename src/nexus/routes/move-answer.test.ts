/**
 * refresh-shares, reshare and rotate-root-key answer only when the sharing move is done (every
 * Keeper acknowledged, with retries: a Keeper that does not answer costs 6 × its 5 s timeout
 * plus backoff, ~37 s), and the SDK waits for that answer up to its whole request timeout
 * (60 s). The server closes a socket with no byte read or written for
 * SPIKE_HTTP_SERVER_INACTIVITY_TIMEOUT (30 s), mid-request included: without the route flag
 * `answersWhenDone` the operator would get a reset connection instead of Nexus's answer.
 * Here: a router behind an HTTP server with a 300 ms inactivity timeout (as the mTLS server
 * sets it) and handlers that answer after 900 ms.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../../lib/log.js';
import { SpiffeId } from '../../spiffe/id.js';
import { PATHS } from '../../protocol/index.js';
import { guardIdentity } from '../../http/guards.js';
import { defineRoute, definitionOf } from '../../http/route.js';
import { createRouter } from '../../http/router.js';
import { s } from '../../http/schema.js';
import { createMtlsServer } from '../../spiffe/tls/index.js';
import { StaticX509Source } from '../../spiffe/source.js';
import { NexusClient, NexusApiError } from '../../sdk/index.js';
import { bundleSetOf, createCa, makeSvid } from '../../../test/helpers/pki.js';
import type { NexusContext } from '../context.js';
import { rotationRoutes } from './rotation.js';
import { sharingRoutes } from './sharing.js';

const IDLE_MS = 300;
const ANSWER_AFTER_MS = 900;
const allow = guardIdentity('test.allow', () => true);
const slow = async (): Promise<{ ok: boolean }> => {
  await sleep(ANSWER_AFTER_MS);
  return { ok: true };
};
const router = createRouter([
  defineRoute({ path: '/until-done', body: s.empty(), guard: allow, answersWhenDone: true, handle: slow }),
  defineRoute({ path: '/plain', body: s.empty(), guard: allow, handle: slow }),
], { isReady: () => true, logger: createLogger({ component: 't', destination: new Writable({ write: (_c, _e, cb) => cb() }) }) });
const peer = SpiffeId.parse('spiffe://spike.ist/app/x');
let server: http.Server;
let port = 0;

before(async () => {
  server = http.createServer((req, res) => void router(req, res, peer));
  server.setTimeout(IDLE_MS); // as createMtlsServer does with inactivityTimeoutMs
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** POSTs `{}`; resolves with the status, or the error code when the connection was closed first. */
function post(path: string, agent: http.Agent): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    req.end('{}');
  });
}

test('a route that answers when done keeps its connection past the inactivity timeout; the timeout applies again afterwards', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    assert.equal(await post('/plain', agent), 'ECONNRESET', 'the control: a silent request is cut at the inactivity timeout');
    assert.equal(await post('/until-done', agent), 200);
    assert.equal(await post('/plain', agent), 'ECONNRESET', 'restored on that connection');
  } finally {
    agent.destroy();
  }
});

test('refresh-shares, reshare and rotate-root-key are routes that answer when done', () => {
  const ctx = { guards: { rotateRootKey: allow } } as unknown as NexusContext;
  const routes = [...sharingRoutes(ctx), ...rotationRoutes(ctx)];
  const flagged = routes.filter((r) => definitionOf(r).answersWhenDone === true).map((r) => r.path).sort();
  assert.deepEqual(flagged, [PATHS.refreshShares, PATHS.reshare, PATHS.rotateRootKey].sort());
});

test('through the mTLS server and the SDK: refresh-shares answered after the inactivity timeout reaches the operator', async () => {
  const TD = 'td1.test';
  const ca = await createCa(TD);
  const routes = [
    defineRoute({ path: PATHS.refreshShares, body: s.empty(), guard: allow, answersWhenDone: true, handle: async () => {
      await sleep(ANSWER_AFTER_MS);
      return { epoch: 3, threshold: 2, shares: 3 };
    } }),
    defineRoute({ path: PATHS.secrets, action: 'get', body: s.object({}), guard: allow, handle: slow }),
  ];
  const mtls = createMtlsServer({
    source: new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/spike/nexus`), bundleSetOf(ca)),
    host: '127.0.0.1',
    port: 0,
    inactivityTimeoutMs: IDLE_MS,
    logger: createLogger({ component: 't', level: 'silent' }),
    handler: createRouter(routes, { isReady: () => true, logger: createLogger({ component: 't', level: 'silent' }) }),
  });
  await mtls.listen();
  const client = await NexusClient.connect({
    urls: [`https://127.0.0.1:${mtls.port}`],
    source: new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/spike/pilot/role/superuser`), bundleSetOf(ca)),
    env: { SPIKE_TRUST_ROOT_NEXUS: TD },
    timeoutMs: 30_000,
  });
  try {
    assert.deepEqual(await client.refreshShares(), { epoch: 3, threshold: 2, shares: 3 });
    // the control: an ordinary route on the same server is still cut at the inactivity timeout
    await assert.rejects(client.getSecret('app/x'), (e: unknown) => e instanceof NexusApiError && e.status === undefined);
  } finally {
    await client.close();
    await mtls.close();
  }
});
