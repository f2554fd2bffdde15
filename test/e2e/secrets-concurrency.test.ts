/**
 * SEC-13 / P8 over real processes (SDK → mTLS → Nexus on SQLite with group commit, and on PostgreSQL):
 * 50 concurrent puts to one path make 50 distinct versions, each reading back its own value;
 * 50 concurrent check-and-set puts with the same expected version → exactly one wins.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NexusClient } from '../../src/sdk/index.js';
import { Stack, e2eBackends } from '../helpers/stack.js';

let stack: Stack;
let pilot: NexusClient;

// One suite, every backend (issue 8): sqlite, then postgres (a throw-away cluster per stack).
for (const backend of e2eBackends()) {
  describe(`backend: ${backend}`, () => {
    before(async () => {
      stack = await Stack.start({ backend, nexusEnv: { SPIKE_NEXUS_MAX_SECRET_VERSIONS: '200' } });
      pilot = await stack.client('pilot');
    });
    after(async () => {
      await stack?.stop();
    });

    test('SEC-13 / P8: 50 concurrent puts to one path → versions 1..50, each holding exactly one writer\'s value', async () => {
      const path = 'race/one/path';
      const sent = Array.from({ length: 50 }, (_, i) => `value-${i}-${'x'.repeat(i)}`);
      const results = await Promise.allSettled(sent.map((v, i) => pilot.putSecret(path, { v, writer: String(i) })));
      assert.deepEqual(results.filter((r) => r.status === 'rejected'), []);
      const meta = await pilot.getSecretMetadata(path);
      assert.equal(meta.metadata.currentVersion, 50);
      assert.equal(meta.metadata.oldestVersion, 1);
      assert.deepEqual(Object.keys(meta.versions).map(Number).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1));
      const seen = new Map<string, number>();
      for (let version = 1; version <= 50; version++) {
        const got = await pilot.getSecret(path, { version });
        const w = Number(got['writer']);
        assert.equal(got['v'], sent[w], `version ${version} holds a torn or foreign value`);
        assert.ok(!seen.has(got['writer'] as string), `writer ${w} appears in two versions`);
        seen.set(got['writer'] as string, version);
      }
      assert.equal(seen.size, 50, 'every acknowledged write has its own version');
    });

    test('SEC-13 / D13: 50 concurrent check-and-set puts expecting the same version → one 200, 49 × api_conflict (409)', async () => {
      const path = 'race/cas';
      await pilot.putSecret(path, { v: 'base' });
      const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => pilot.putSecret(path, { v: `cas-${i}` }, { cas: 1 })));
      const ok = results.filter((r) => r.status === 'fulfilled');
      const conflicts = results.filter((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'api_conflict');
      assert.equal(ok.length, 1);
      assert.equal(conflicts.length, 49);
      const meta = await pilot.getSecretMetadata(path);
      assert.equal(meta.metadata.currentVersion, 2);
      const winner = results.findIndex((r) => r.status === 'fulfilled');
      assert.deepEqual({ ...(await pilot.getSecret(path)) }, { v: `cas-${winner}` });
    });
  });
}
