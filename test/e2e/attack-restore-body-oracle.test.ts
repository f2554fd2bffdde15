/**
 * ATTACK body oracle, against a real stack (spike-agent SVIDs, 3 Keepers, sqlite Nexus,
 * Bootstrap) over real mTLS: a caller with no right on a route must get 401
 * `access_unauthorized` before its body is read, never the route's validation answer (400,
 * e.g. "shard must not be all zero"), which would tell a refused caller how the route
 * validates, and that it reached the body stage at all.
 *
 * 1. The reported case: wrong identities sending an all-zero shard to `operator restore`.
 * 2. A sweep over every route of Nexus (the route table as built by Nexus's own route
 *    modules, from the router's `routes` listing) and every identity the route's guard turns
 *    away on identity: a set of invalid bodies (malformed, wrong types, all-zero shard, too
 *    deep, empty, and octet-stream garbage for the cipher stream variants) all get 401.
 * 3. The same for the Keeper routes: identities the Keeper lets through TLS but whose route
 *    guard refuses them get 401; the others are refused at the handshake (no answer at all).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { loadTrustRoots, recognisers } from '../../src/protocol/index.js';
import type { Route } from '../../src/http/index.js';
import { createLogger } from '../../src/lib/log.js';
import { keeperRouter } from '../../src/keeper/server.js';
import { ShareSlot } from '../../src/keeper/slot.js';
import { bootstrapRoutes } from '../../src/nexus/routes/bootstrap.js';
import { ROUTE_MODULES } from '../../src/nexus/routes/index.js';
import { SpiffeId } from '../../src/spiffe/id.js';
import { type RouteHarness, startRouteHarness } from '../helpers/route-harness.js';
import { Stack, TD } from '../helpers/stack.js';
import { type RawHttps, rawHttps } from './attack-helpers.js';
import { type RawClient, rawClient } from './secrets-helpers.js';

const IDENTITIES: Record<string, string> = {
  'app-none': `spiffe://${TD}/workload/app-none`,
  pilot: `spiffe://${TD}/spike/pilot/role/superuser`,
  recover: `spiffe://${TD}/spike/pilot/role/recover`,
  restore: `spiffe://${TD}/spike/pilot/role/restore`,
  lite: `spiffe://${TD}/spike/workload/role/lite`,
  bootstrap: `spiffe://${TD}/spike/bootstrap`,
  nexus: `spiffe://${TD}/spike/nexus`,
};
const ZERO_SHARD = JSON.stringify({ id: 1, shard: Array.from({ length: 32 }, () => 0) });
const RESTORE_401 = '{"collected":0,"remaining":0,"restored":false,"err":"access_unauthorized"}';

/** Invalid bodies: each fails parsing or validation on every route that reads it. */
const INVALID_JSON: ReadonlyArray<[string, string]> = [
  ['malformed', '{"id":'],
  ['wrong types', '{"id":[],"shard":"x","path":7,"values":[],"name":{},"nonce":5,"plaintext":9,"versions":"v"}'],
  ['all-zero shard', ZERO_SHARD],
  ['too deep', '['.repeat(200)],
  ['empty', ''],
];
const INVALID_STREAM = Buffer.from([0x02, 0xff, 0x00, 0x13]);

let stack: Stack;
let harness: RouteHarness;
const clients = new Map<string, RawClient>();
const keeperClients = new Map<string, RawHttps>();

before(async () => {
  stack = await Stack.start({ identities: { 'app-none': IDENTITIES['app-none']! } });
  for (const id of Object.keys(IDENTITIES)) clients.set(id, await rawClient(stack, id));
  // Nexus's own route modules, built in-process only to list the route table (and to ask each
  // route's guard, with the same empty policy set as the stack, whom it turns away).
  harness = await startRouteHarness({ modules: [bootstrapRoutes, ...ROUTE_MODULES] });
});

after(async () => {
  for (const c of clients.values()) await c.close().catch(() => undefined);
  for (const c of keeperClients.values()) c.close();
  await harness?.close();
  await stack?.stop();
});

/** The wire error code (`Err` in the Keeper shard shape). */
const errOf = (json: unknown): unknown => (json as { err?: unknown } | undefined)?.err ?? (json as { Err?: unknown } | undefined)?.Err;
const target = (r: Route): string => (r.action === '' ? r.path : `${r.path}?action=${r.action}`);

test('ATTACK body oracle: a wrong identity sending an all-zero shard to operator restore gets 401, not the validation 400', async () => {
  for (const id of ['app-none', 'pilot', 'recover', 'lite', 'bootstrap', 'nexus']) {
    const r = await clients.get(id)!.post('/v1/operator/restore', ZERO_SHARD);
    assert.equal(r.status, 401, `${id}: ${r.status} ${r.body}`);
    assert.equal(r.body, RESTORE_401, id);
  }
  // Control: the body really is invalid — the restore role itself gets the validation 400.
  const own = await clients.get('restore')!.post('/v1/operator/restore', ZERO_SHARD);
  assert.equal(own.status, 400);
  assert.equal(errOf(own.json), 'api_bad_request');
});

test('ATTACK body oracle sweep: every Nexus route × every identity its guard refuses × invalid bodies → 401', async (t) => {
  const routes = harness.router.routes;
  assert.ok(routes.length >= 18, `only ${routes.length} routes listed`);
  const failures: string[] = [];
  let cells = 0;
  for (const r of routes) {
    for (const [id, uri] of Object.entries(IDENTITIES)) {
      const peer = SpiffeId.parse(uri);
      const c = clients.get(id)!;
      if (!r.guard.admits(peer)) {
        for (const [what, body] of INVALID_JSON) {
          const rep = await c.post(target(r), body);
          cells++;
          if (rep.status !== 401 || errOf(rep.json) !== 'access_unauthorized' || rep.body.includes('"message"')) {
            failures.push(`${id} × ${r.name} (${what}): ${rep.status} ${rep.body.slice(0, 100)}`);
          }
        }
      }
      if (r.streamGuard !== undefined && !r.streamGuard.admits(peer)) {
        const rep = await c.post(target(r), INVALID_STREAM, { headers: { 'content-type': 'application/octet-stream' } });
        cells++;
        if (rep.status !== 401 || errOf(rep.json) !== 'access_unauthorized') failures.push(`${id} × ${r.name} (stream garbage): ${rep.status} ${rep.body.slice(0, 100)}`);
      }
    }
  }
  t.diagnostic(`${routes.length} routes, ${cells} refused calls`);
  assert.deepEqual(failures, [], `${failures.length} of ${cells} refused calls were not a plain 401`);
  assert.ok(cells >= 200, `only ${cells} cells ran`);
});

test('ATTACK body oracle sweep: Keeper routes — refused identities get 401 (or no answer at the handshake), never a validation 400', async (t) => {
  const ids = recognisers(loadTrustRoots({}));
  const quiet = createLogger({ component: 'sweep', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const routes = keeperRouter(new ShareSlot(), ids, quiet).routes;
  assert.equal(routes.length, 4); // contribute, shard, anchor, status
  const keeperId = `spiffe://${TD}/spike/keeper/1`;
  const failures: string[] = [];
  let answered401 = 0;
  let refusedAtHandshake = 0;
  for (const r of routes) {
    for (const [id, uri] of Object.entries(IDENTITIES)) {
      if (r.guard.admits(SpiffeId.parse(uri))) continue;
      let c = keeperClients.get(id);
      if (c === undefined) {
        c = await rawHttps(stack, id, keeperId);
        keeperClients.set(id, c);
      }
      for (const [what, body] of INVALID_JSON) {
        const rep = await c.send(stack.keeperUrls[0]!, { path: target(r), body: Buffer.from(body), timeoutMs: 30_000 });
        if (rep.kind === 'answer') {
          if (rep.status === 401 && errOf(rep.json) === 'access_unauthorized') answered401++;
          else failures.push(`${id} × ${r.name} (${what}): ${rep.status} ${String(rep.body).slice(0, 100)}`);
        } else if (rep.kind === 'error') {
          refusedAtHandshake++;
        } else {
          failures.push(`${id} × ${r.name} (${what}): timed out`);
        }
      }
    }
  }
  t.diagnostic(`${answered401} answered 401, ${refusedAtHandshake} refused at the handshake`);
  assert.deepEqual(failures, []);
  // Bootstrap passes the Keeper's TLS but may not read the shard: that cell must be a 401.
  assert.ok(answered401 >= INVALID_JSON.length, `only ${answered401} answered 401s`);
  assert.ok(refusedAtHandshake > 0, 'identities outside Nexus/Bootstrap are refused at the handshake');
});
