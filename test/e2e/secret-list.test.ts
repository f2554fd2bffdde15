/**
 * Scalable `secret list` end to end (issue 18 §6) on the real stack (agent, Keepers, Nexus on
 * SQLite, bootstrap, mTLS), through the real `spike` binary and the SDK:
 * - `spike secret list [prefix]` prints only the prefix, walks pages (more keys than one
 *   page), keeps SPIKE's output (human and --json); a bad prefix is one line, exit 1;
 * - the SDK's paged list and iterator return every path once, in order;
 * - a workload with a policy on one subtree pages through exactly its visible paths;
 * - after a Nexus restart the index is rebuilt from the database (build at start), and
 *   fully deleted or destroyed secrets stay listed, as `list` always did.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { NexusClient } from '../../src/sdk/index.js';
import { Stack } from '../helpers/stack.js';

const APP = 'spiffe://spike.ist/workload/list-app';
const N = 2100; // more than two pages of the CLI's 1,000

describe('secret list: prefix and pages (sqlite)', () => {
  let stack: Stack;
  let pilot: NexusClient;
  const big = Array.from({ length: N }, (_, i) => `big/${String(i).padStart(5, '0')}`);

  before(async () => {
    stack = await Stack.start({ identities: { 'list-app': APP } });
    pilot = await stack.client('pilot');
    for (let i = 0; i < big.length; i += 100) await Promise.all(big.slice(i, i + 100).map((p) => pilot.putSecret(p, { k: 'v' })));
    for (const p of ['small/a', 'small/b', 'smallish', 'team/x/1', 'team/y/1', 'team/x/2']) await pilot.putSecret(p, { k: 'v' });
  });
  after(async () => {
    await stack?.stop();
  });

  test('CLI: `spike secret list <prefix>` lists only the prefix, every page, SPIKE\'s formats', async () => {
    const [small, json, all, none, bad] = await Promise.all([
      stack.spike(['secret', 'list', 'small/']),
      stack.spike(['secret', 'list', 'big/', '--json']),
      stack.spike(['secret', 'list']),
      stack.spike(['secret', 'list', 'nothing/']),
      stack.spike(['secret', 'list', 'bad prefix!']),
    ]);
    assert.equal(small.code, 0, small.stderr);
    assert.equal(small.stdout, '- small/a\n- small/b\n');
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), big);
    assert.equal(all.code, 0, all.stderr);
    assert.equal(all.stdout.split('\n').filter(Boolean).length, N + 6);
    assert.equal(none.stdout, 'No secrets found.\n');
    assert.equal(bad.code, 2);
    assert.equal(bad.stdout, '');
    assert.deepEqual(bad.stderr.split('\n').filter(Boolean), ['Error: Invalid secret path prefix: character 4 is not allowed (use ASCII letters, digits and . _ - / ( ) ? + * | [ ] { } \\).']);
  });

  test('SDK: pages of 250 and the iterator return every path once, in order; {} still answers everything', async () => {
    const got: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await pilot.listSecretsPage({ prefix: 'big/', limit: 250, ...(cursor !== undefined ? { cursor } : {}) });
      got.push(...page.keys);
      pages++;
      if (page.next === undefined) break;
      cursor = page.next;
    }
    assert.equal(pages, Math.ceil(N / 250));
    assert.deepEqual(got, big);
    const it: string[] = [];
    for await (const k of pilot.secretPaths({ prefix: 'team/', pageSize: 2 })) it.push(k);
    assert.deepEqual(it, ['team/x/1', 'team/x/2', 'team/y/1']);
    assert.equal((await pilot.listSecrets()).length, N + 6);
  });

  test('workload: pages hold only what its policy lets it list', async () => {
    await pilot.putPolicy({ name: 'list-app', spiffeIdPattern: '^spiffe://spike\\.ist/workload/list-app$', pathPattern: '^team/x/.*$', permissions: ['list'] });
    const app = await stack.client('list-app');
    const got: string[] = [];
    for await (const k of app.secretPaths({ pageSize: 1 })) got.push(k);
    assert.deepEqual(got, ['team/x/1', 'team/x/2']);
    assert.deepEqual(await app.listSecretsPage({ prefix: 'team/', limit: 1 }), { keys: ['team/x/1'], next: 'team/x/1' });
    assert.deepEqual(await app.listSecrets({ prefix: 'big/' }), []);
  });

  test('restart: the index is rebuilt from the database; deleted and destroyed secrets stay listed', async () => {
    await pilot.deleteSecret('small/a', [1]);
    await pilot.destroySecret('small/b', [1]);
    await stack.killNexus('SIGKILL');
    await stack.startNexus();
    await stack.waitReady();
    const fresh = await stack.client('pilot');
    assert.deepEqual(await fresh.listSecrets({ prefix: 'small' }), ['small/a', 'small/b', 'smallish']);
    assert.equal((await fresh.listSecrets({ prefix: 'big/' })).length, N);
    await fresh.putSecret('small/c', { k: 'v' });
    assert.deepEqual(await fresh.listSecrets({ prefix: 'small/' }), ['small/a', 'small/b', 'small/c']);
  });
});
