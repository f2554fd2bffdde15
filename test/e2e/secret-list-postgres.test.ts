/**
 * Scalable `secret list` across instances (issue 18 §6): two spike-nexus processes on one
 * real PostgreSQL database (agent, Keepers, bootstrap, mTLS).
 * - A path acknowledged by instance A is in the very next list on instance B (no delay, no
 *   polling): B's list first reads the paths created since its last snapshot.
 * - Paging on B while writers add paths through A and B: every path acknowledged before
 *   the first page is returned exactly once, no path ever twice, keys ascending.
 * - The CLI, pointed at B, lists a prefix written through A.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NexusClient } from '../../src/sdk/index.js';
import { Stack, e2eBackends } from '../helpers/stack.js';

describe('secret list across two Nexus on PostgreSQL', { skip: !e2eBackends().includes('postgres') }, () => {
  let stack: Stack;
  let a: NexusClient;
  let b: NexusClient;

  before(async () => {
    stack = await Stack.start({ backend: 'postgres', nexusCount: 2 });
    const [ua, ub] = stack.nexusUrls as [string, string];
    a = await stack.client('pilot', { urls: [ua] });
    b = await stack.client('pilot', { urls: [ub] });
  });
  after(async () => {
    await stack?.stop();
  });

  test('a path written on A shows up in the next list on B', async () => {
    assert.deepEqual(await b.listSecrets({ prefix: 'cross/' }), []); // B's index is built and current
    for (let i = 0; i < 30; i++) {
      const p = `cross/${String(i).padStart(2, '0')}`;
      await (i % 2 === 0 ? a : b).putSecret(p, { k: 'v' });
      const other = i % 2 === 0 ? b : a;
      assert.deepEqual(await other.listSecrets({ prefix: p }), [p], `written on ${i % 2 === 0 ? 'A' : 'B'}, listed on the other`);
    }
    assert.deepEqual(await a.listSecrets({ prefix: 'cross/' }), await b.listSecrets({ prefix: 'cross/' }));
  });

  test('paging on B under concurrent writes on A and B: earlier paths exactly once, never a duplicate', async () => {
    const initial = Array.from({ length: 400 }, (_, i) => `page/${String(i * 2).padStart(4, '0')}`);
    for (let i = 0; i < initial.length; i += 50) await Promise.all(initial.slice(i, i + 50).map((p) => a.putSecret(p, { k: 'v' })));
    let writing = true;
    let n = 0;
    const writers = [a, b].map(async (c) => {
      while (writing) await c.putSecret(`page/${String(n++ * 2 + 1).padStart(4, '0')}`, { k: 'v' }); // between earlier paths
    });
    const got: string[] = [];
    try {
      let cursor: string | undefined;
      for (;;) {
        const page = await b.listSecretsPage({ prefix: 'page/', limit: 20, ...(cursor !== undefined ? { cursor } : {}) });
        got.push(...page.keys);
        if (page.next === undefined) break;
        cursor = page.next;
      }
    } finally {
      writing = false;
      await Promise.all(writers);
    }
    assert.ok(n > 0, 'writes ran during the walk');
    assert.equal(new Set(got).size, got.length, 'no path twice');
    assert.deepEqual([...got].sort(), got, 'ascending');
    const missing = initial.filter((p) => !got.includes(p));
    assert.deepEqual(missing, [], 'every path acknowledged before the first page is listed');
  });

  test('CLI against B lists a prefix written through A', async () => {
    await a.putSecret('cli/x', { k: 'v' });
    const r = await stack.spike(['secret', 'list', 'cli/'], { env: { SPIKE_NEXUS_API_URL: stack.nexusUrls[1] as string } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '- cli/x\n');
  });
});
