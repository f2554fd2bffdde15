/**
 * Policies over real processes (spike-nexus on SQLite and on PostgreSQL, Keepers, mTLS):
 * - policies survive a kill -9 and restart, and the restarted Nexus enforces them as soon as it
 *   is ready (the engine is loaded after key recovery) — grants and revocations alike;
 * - POL-17: with 100 requests in flight while a policy is deleted, no request that starts after
 *   the delete's 200 is allowed; narrowing a policy likewise takes effect at once;
 * - B1: get/delete of a missing policy answer 404 over the wire (SPIKE: 500).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NexusClient } from '../../src/sdk/index.js';
import { Stack, e2eBackends } from '../helpers/stack.js';
import { type RawClient, rawClient } from './secrets-helpers.js';

const APP = 'spiffe://spike.ist/workload/pol-app';
const APP_RE = '^spiffe://spike\\.ist/workload/pol-app$';
let stack: Stack;
let pilot: NexusClient;
let app: NexusClient;
let rawPilot: RawClient;

// One suite, every backend (issue 8): sqlite, then postgres (a throw-away cluster per stack).
for (const backend of e2eBackends()) {
  describe(`backend: ${backend}`, () => {
    before(async () => {
      stack = await Stack.start({ backend, identities: { 'pol-app': APP } });
      pilot = await stack.client('pilot');
      app = await stack.client('pol-app');
      rawPilot = await rawClient(stack, 'pilot');
      await pilot.putSecret('apps/pol/one', { v: '1' });
      await pilot.putSecret('apps/other/two', { v: '2' });
    });
    after(async () => {
      await rawPilot?.close();
      await stack?.stop();
    });

    const canRead = async (path: string): Promise<boolean> => {
      try {
        await app.getSecret(path);
        return true;
      } catch (e) {
        if ((e as { code?: string }).code === 'access_unauthorized') return false;
        throw e;
      }
    };

    test('policies persist across kill -9 and are enforced right after the restart (grant and revocation)', async () => {
      await pilot.putPolicy({ name: 'pol-read', spiffeIdPattern: APP_RE, pathPattern: '^apps/pol/.*$', permissions: ['read'] });
      await pilot.putPolicy({ name: 'pol-gone', spiffeIdPattern: APP_RE, pathPattern: '^apps/other/.*$', permissions: ['read'] });
      await pilot.deletePolicy('pol-gone');
      const before = await pilot.getPolicy('pol-read');
      assert.equal(await canRead('apps/pol/one'), true);
      assert.equal(await canRead('apps/other/two'), false);
      await stack.killNexus('SIGKILL');
      await stack.startNexus();
      await stack.waitReady();
      assert.equal(await canRead('apps/pol/one'), true, 'grant lost across restart');
      assert.equal(await canRead('apps/other/two'), false, 'revocation lost across restart');
      const after = await pilot.getPolicy('pol-read');
      assert.deepEqual(after, before);
      assert.deepEqual((await pilot.listPolicies()).map((p) => p.name), ['pol-read']);
    });

    test('POL-17: no request started after a delete\'s 200 is allowed, with 100 requests in flight; narrowing applies at once', async () => {
      await pilot.putPolicy({ name: 'pol-17', spiffeIdPattern: APP_RE, pathPattern: '^apps/other/.*$', permissions: ['read'] });
      assert.equal(await canRead('apps/other/two'), true);
      // narrow: the next request is denied
      await pilot.putPolicy({ name: 'pol-17', spiffeIdPattern: APP_RE, pathPattern: '^apps/other/none$', permissions: ['read'] });
      assert.equal(await canRead('apps/other/two'), false);
      await pilot.putPolicy({ name: 'pol-17', spiffeIdPattern: APP_RE, pathPattern: '^apps/other/.*$', permissions: ['read'] });
      assert.equal(await canRead('apps/other/two'), true);
      const inflight = Array.from({ length: 100 }, () => canRead('apps/other/two'));
      await pilot.deletePolicy('pol-17');
      const started = Array.from({ length: 50 }, () => canRead('apps/other/two'));
      assert.deepEqual((await Promise.all(started)).filter(Boolean), [], 'a request after the delete was allowed');
      await Promise.all(inflight);
      // the other grant is untouched
      assert.equal(await canRead('apps/pol/one'), true);
    });

    test('B1 fixed over the wire: missing policy get/delete → 404 with SPIKE\'s shapes', async () => {
      const g = await rawPilot.post('/v1/acl/policy?action=get', { id: 'never-was' });
      assert.equal(g.status, 404);
      assert.equal((g.json as { err: string }).err, 'api_not_found');
      const d = await rawPilot.post('/v1/acl/policy?action=delete', { id: 'never-was' });
      assert.equal(d.status, 404);
      assert.equal(d.body, '{"err":"api_not_found"}');
      await assert.rejects(pilot.getPolicy('never-was'), (e: { code?: string }) => e.code === 'api_not_found');
    });
  });
}
