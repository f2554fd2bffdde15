/**
 * attack-rollback-stale-policies (attacker review): an older copy of the store is put back under
 * a running Nexus (a backup restored after a compromise, or a failover to a standby that
 * lagged), detected, and accepted by the operator. The store's policy generation then went
 * back, and the engine used to ignore every load older than the set it held: the policies of
 * before the rollback kept granting — a policy the store no longer holds, and even one
 * re-created and deleted through the API afterwards — until the generation caught up or
 * Nexus restarted. Now accepting the rollback loads the store's policies, and a reload that
 * began after the engine last changed takes an older generation.
 */
import path from 'node:path';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/temp.js';
import { rawClient } from './secrets-helpers.js';
import { PATHS } from '../../src/protocol/index.js';

const W = 'spiffe://spike.ist/app/w';
const S = PATHS.secrets;
const P = PATHS.policy;
const stacks: Stack[] = [];
after(async () => {
  for (const s of stacks) await s.stop();
});

test('attack-rollback-stale-policies: after an accepted rollback the store\'s policies are in force; a delete afterwards denies at once', async () => {
  const stack = await Stack.start({ identities: { w: W } });
  stacks.push(stack);
  const pilot = await rawClient(stack, 'pilot');
  const w = await rawClient(stack, 'w');
  try {
    const grant = { name: 'grant-w', spiffeidPattern: '^spiffe://spike\\.ist/app/w$', pathPattern: '^app/.*$', permissions: ['read'] };
    assert.equal((await pilot.post(S, { path: 'app/x', values: { v: 'x' } })).status, 200);
    const copy = path.join(tempDir('spike-rollback-policies-'), 'older.db');
    const b = await stack.run('spike-nexus', ['backup', copy], stack.nexusEnv());
    assert.equal(b.code, 0, b.stderr);

    // After the backup: a grant for W, and policy writes that move the generation well past the copy's.
    assert.equal((await pilot.post(P, grant)).status, 200);
    for (let i = 0; i < 4; i++) {
      assert.equal((await pilot.post(P, { ...grant, name: `other-${i}`, spiffeidPattern: '^spiffe://spike\\.ist/nobody$' })).status, 200);
      assert.equal((await pilot.post(`${P}?action=delete`, { id: `other-${i}` })).status, 200);
    }
    assert.equal((await w.post(`${S}?action=get`, { path: 'app/x' })).status, 200, 'W may read before the rollback');

    // The older copy is put back under the running Nexus (SQLite's backup API into the live file).
    const src = new Database(copy, { readonly: true });
    await src.backup(path.join(stack.dir, 'data', 'spike.db'));
    src.close();
    let refused = false;
    for (let i = 0; i < 120 && !refused; i++) {
      refused = (await pilot.post(`${S}?action=get`, { path: 'app/x' })).status === 503;
      if (!refused) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(refused, 'the rollback was detected while serving');
    const accepted = await pilot.post('/v1/operator/accept-rollback', {});
    assert.equal(accepted.status, 200, accepted.body);
    assert.match(accepted.body, /"accepted":true/);

    assert.equal(JSON.parse((await pilot.post(`${P}?action=list`, {})).body).policies.length, 0, 'the copy holds no policy');
    assert.equal((await w.post(`${S}?action=get`, { path: 'app/x' })).status, 401, 'a policy the store no longer holds grants nothing');
    assert.equal((await pilot.post(P, grant)).status, 200);
    assert.equal((await w.post(`${S}?action=get`, { path: 'app/x' })).status, 200, 'a grant made after the rollback is in force');
    assert.equal((await pilot.post(`${P}?action=delete`, { id: 'grant-w' })).status, 200);
    assert.equal((await w.post(`${S}?action=get`, { path: 'app/x' })).status, 401, 'and its delete denies at the next request');
  } finally {
    await pilot.close();
    await w.close();
  }
});
