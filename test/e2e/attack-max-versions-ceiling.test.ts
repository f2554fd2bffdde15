/**
 * ATTACK maxVersions above the operator ceiling (issue 11, item 2), real binaries, real mTLS,
 * real SQLite.
 *
 * Reproduction against the old code: the operator sets SPIKE_NEXUS_MAX_SECRET_VERSIONS=3 so
 * that rotated credentials do not linger. A workload allowed to write a path puts its secret
 * with `maxVersions: 1000` (an additive field of the put request) and rotates it six times:
 * all six versions were kept, readable and stored, and the metadata said 1000.
 *
 * Expected now: the operator's value is a ceiling. The request is clamped (not refused, so
 * clients that always send a maxVersions keep working): the metadata reports 3, versions 1–3
 * are gone (404), and the database holds exactly three value rows for the secret.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Stack, TD } from '../helpers/stack.js';

const WRITER = `spiffe://${TD}/workload/rotator`;

describe('ATTACK maxVersions above the operator ceiling', { concurrency: false }, () => {
  let stack: Stack;

  before(async () => {
    stack = await Stack.start({ identities: { rotator: WRITER }, nexusEnv: { SPIKE_NEXUS_MAX_SECRET_VERSIONS: '3' } });
  });
  after(async () => {
    await stack?.stop();
  });

  test('ATTACK maxVersions above the operator ceiling: a writer asks to keep 1000 versions; Nexus keeps SPIKE_NEXUS_MAX_SECRET_VERSIONS', async () => {
    const pilot = await stack.client('pilot');
    await pilot.putPolicy({
      name: 'rotator', spiffeIdPattern: `^${WRITER.replace(/[.]/g, '\\.')}$`, pathPattern: '^rotating/.*$', permissions: ['read', 'write'],
    });
    const writer = await stack.client('rotator');
    for (let i = 1; i <= 6; i++) await writer.putSecret('rotating/db', { password: `pw-${i}` }, { maxVersions: 1000 });

    const md = await pilot.getSecretMetadata('rotating/db');
    assert.equal(md.metadata.maxVersions, 3, 'the stored maxVersions is the operator ceiling');
    assert.deepEqual(Object.keys(md.versions).sort(), ['4', '5', '6']);
    assert.deepEqual({ ...(await writer.getSecret('rotating/db')) }, { password: 'pw-6' });
    for (const v of [1, 2, 3]) {
      await assert.rejects(writer.getSecret('rotating/db', { version: v }), (e: unknown) => (e as { code?: string }).code === 'api_not_found', `v${v} pruned`);
    }
    // At rest: only three value rows exist (this is the only secret in the store).
    const db = new Database(path.join(stack.dir, 'data', 'spike.db'), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT COUNT(*) AS n FROM secret_versions').get() as { n: number };
      assert.equal(rows.n, 3);
    } finally {
      db.close();
    }
    // A smaller request is honoured.
    await writer.putSecret('rotating/db', { password: 'pw-7' }, { maxVersions: 2 });
    const md2 = await pilot.getSecretMetadata('rotating/db');
    assert.equal(md2.metadata.maxVersions, 2);
    assert.deepEqual(Object.keys(md2.versions).sort(), ['6', '7']);
    assert.doesNotMatch(stack.logs('nexus'), /pw-\d|rotating\/db/);
  });
});
