/**
 * P1 / STO-11 / STO-02 through the API (real Nexus on SQLite, real mTLS):
 * - canary values (ASCII, non-ASCII, binary-as-base64), canary path segments, canary policy
 *   names and patterns go through put/get/delete/undelete/destroy/pruning and a kill -9 +
 *   restart; then every file in `<stack.dir>/data` (db, -wal, -shm, anything else) is scanned
 *   for each canary as raw UTF-8, lower/upper hex, base64, base64url and JSON-escaped text →
 *   zero hits (also: Nexus's own log output holds no canary);
 * - two value blobs are swapped between rows with the `sqlite3` CLI → reads of both secrets
 *   fail with 500 `api_internal_error` (integrity), never the other's value; others still read.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { NexusClient } from '../../src/sdk/index.js';
import { ensureCommand } from '../helpers/apt.js';
import { Stack } from '../helpers/stack.js';
import { type RawClient, rawClient } from './secrets-helpers.js';

let stack: Stack;
let pilot: NexusClient;
let raw: RawClient;

/** sqlite3 CLI: present, or installed here via apt (as the brief allows); else the swap test fails loudly. */
function ensureSqliteCli(): boolean {
  return ensureCommand('sqlite3', ['-version'], 'sqlite3');
}

function sql(file: string, statements: string): string {
  const r = spawnSync('sqlite3', ['-batch', file], { input: statements, encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`sqlite3 failed: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  stack = await Stack.start({ nexusEnv: { SPIKE_NEXUS_MAX_SECRET_VERSIONS: '3' } });
  pilot = await stack.client('pilot');
  raw = await rawClient(stack, 'pilot');
});
after(async () => {
  await raw?.close();
  await stack?.stop();
});

/** 20 random canaries, each 24 random bytes rendered as a name-safe string. */
const canaries = Array.from({ length: 20 }, () => `cnry${randomBytes(24).toString('hex').slice(0, 28)}`);

function encodings(c: string): Buffer[] {
  const b = Buffer.from(c, 'utf8');
  const forms = [
    b,
    Buffer.from(b.toString('hex')),
    Buffer.from(b.toString('hex').toUpperCase()),
    Buffer.from(b.toString('base64').replace(/=+$/, '')),
    Buffer.from(b.toString('base64url')),
    Buffer.from(JSON.stringify(c).slice(1, -1)),
    Buffer.from(c, 'utf16le'),
  ];
  return forms.filter((f) => f.length >= 8);
}

function dataFiles(): string[] {
  const dir = path.join(stack.dir, 'data');
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

test('P1 / STO-11 / D9: canary values, paths and policies never reach the data folder in any encoding', async () => {
  const [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, ...rest] = canaries as [string, ...string[]];
  // values: ASCII, non-ASCII, binary as base64; paths with canary segments
  const p0 = `tenants/${c0}/db`;
  await pilot.putSecret(p0, { username: c1!, password: `пароль-${c2}`, blob: Buffer.from(c3!).toString('base64') });
  await pilot.putSecret(`apps/${c4}`, { key: c5! });
  // pruning (max 3): 6 versions, the first three are pruned
  for (let i = 0; i < 6; i++) await pilot.putSecret(`prune/${c6}`, { v: `${c7}-${i}` });
  // delete / undelete / destroy
  await pilot.deleteSecret(`apps/${c4}`, []);
  await pilot.undeleteSecret(`apps/${c4}`, []);
  await pilot.putSecret(`apps/${c4}`, { key: `${c8}` });
  await pilot.destroySecret(`apps/${c4}`, [1]);
  // policies: canary name and patterns
  await pilot.putPolicy({ name: `pol-${c9}`, spiffeIdPattern: `^spiffe://spike\\.ist/workload/${rest[0]}$`, pathPattern: `^tenants/${rest[1]}/.*$`, permissions: ['read'] });
  await pilot.putPolicy({ name: `pol-${rest[2]}`, spiffeIdPattern: `^spiffe://spike\\.ist/x$`, pathPattern: `^x/${rest[3]}$`, permissions: ['read'] });
  await pilot.deletePolicy(`pol-${rest[2]}`);
  // reads work before and after a crash + restart
  assert.equal((await pilot.getSecret(p0))['username'], c1);
  await stack.killNexus('SIGKILL');
  await stack.startNexus();
  await stack.waitReady();
  assert.equal((await pilot.getSecret(p0))['password'], `пароль-${c2}`);
  assert.equal((await pilot.getSecret(`prune/${c6}`, { version: 6 }))['v'], `${c7}-5`);
  assert.equal((await pilot.getPolicy(`pol-${c9}`)).pathPattern, `^tenants/${rest[1]}/.*$`);
  await pilot.putSecret(`after/${rest[4]}`, { v: rest[5]! });
  // scan with Nexus stopped hard (the files exactly as a crash leaves them), then with it running
  await stack.killNexus('SIGKILL');
  const files = dataFiles();
  assert.ok(files.some((f) => f.endsWith('spike.db')), `no database among ${files.map((f) => path.basename(f)).join(',')}`);
  const hits: string[] = [];
  let bytes = 0;
  for (const f of files) {
    const content = fs.readFileSync(f);
    bytes += content.length;
    for (const [i, c] of canaries.entries()) {
      for (const form of encodings(c)) if (content.includes(form)) hits.push(`${path.basename(f)}: canary ${i}`);
    }
  }
  assert.ok(bytes > 4096, 'scanned nothing');
  // control: the scanner does find plaintext that really is there (the schema text)
  assert.ok(files.some((f) => fs.readFileSync(f).includes(Buffer.from('secret_versions'))), 'scanner control failed');
  assert.deepEqual(hits, []);
  await stack.startNexus();
  await stack.waitReady();
  assert.equal((await pilot.getSecret(`after/${rest[4]}`))['v'], rest[5]);
  // D16: Nexus's log holds no canary either
  const logs = stack.logs('nexus');
  assert.ok(logs.length > 0);
  for (const c of canaries) assert.ok(!logs.includes(c), 'canary in the Nexus log');
});

test('STO-02 / D8: value blobs swapped between two secrets with the sqlite3 CLI → both reads fail (500 integrity), never the other value', async () => {
  assert.ok(ensureSqliteCli(), 'sqlite3 CLI not available and apt-get install failed');
  const db = path.join(stack.dir, 'data', 'spike.db');
  const ids = (): Set<string> => new Set(sql(db, 'SELECT hex(id) FROM secrets;').split('\n').filter(Boolean));
  const before0 = ids();
  await pilot.putSecret('swap/a', { v: 'value-of-a' });
  const afterA = ids();
  await pilot.putSecret('swap/b', { v: 'value-of-b' });
  const afterB = ids();
  await pilot.putSecret('swap/untouched', { v: 'still-fine' });
  const idA = [...afterA].find((x) => !before0.has(x));
  const idB = [...afterB].find((x) => !afterA.has(x));
  assert.ok(idA !== undefined && idB !== undefined && idA !== idB);
  await stack.killNexus('SIGKILL');
  const changed = sql(db, `PRAGMA busy_timeout=5000;
BEGIN IMMEDIATE;
CREATE TEMP TABLE swap AS SELECT id, value FROM secret_versions WHERE id IN (X'${idA}', X'${idB}') AND version = 1;
UPDATE secret_versions SET value = (SELECT s.value FROM swap s WHERE s.id <> secret_versions.id)
  WHERE id IN (X'${idA}', X'${idB}') AND version = 1;
SELECT changes();
COMMIT;`);
  assert.match(changed, /^2\s*$/m, 'exactly two rows swapped');
  await stack.startNexus();
  await stack.waitReady();
  for (const p of ['swap/a', 'swap/b']) {
    const r = await raw.post('/v1/store/secrets?action=get', { path: p });
    assert.equal(r.status, 500, `${p}: ${r.status}`);
    assert.equal((r.json as { err: string }).err, 'api_internal_error');
    assert.equal((r.json as { data: unknown }).data, null);
    assert.ok(!r.body.includes('value-of-'), 'a swapped value leaked');
  }
  assert.deepEqual({ ...(await pilot.getSecret('swap/untouched')) }, { v: 'still-fine' });
  assert.match(stack.logs('nexus'), /integrity_violation/);
  assert.ok(!stack.logs('nexus').includes('swap/a'), 'the path reached the log');
});
