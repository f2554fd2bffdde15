/**
 * Rollback detection on real processes with SQLite (issue 16 §4):
 *  (a) the store file is replaced by an older copy (a `spike-nexus backup` taken earlier)
 *      while the Keepers stayed up → Nexus refuses to serve (503 `state_rollback_detected`,
 *      readyz 503 naming `rollback`, metric, audit event, ERROR line) until
 *      `spike operator accept-rollback`; then it serves the older data, and a later restart
 *      is not refused again;
 *  (b) the WAL is cut after acknowledged commits (kill -9, the -wal file truncated to the
 *      size it had before the last writes) → detected, refused, accepted by command;
 *  (c) a copy put back before the newest anchor reached the Keepers is detected while serving;
 *      the Keepers are handed the evidence, so a kill -9 and restart is refused too.
 * Each waits until the anchor of the last writes reached every Keeper (the store's counter,
 * read from the file, against each Keeper's acknowledged counter in the metrics).
 */
import fs from 'node:fs';
import path from 'node:path';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/temp.js';
import { parsePrometheusText } from '../helpers/prom-text.js';
import type { NexusClient } from '../../src/sdk/index.js';
import { NexusApiError } from '../../src/sdk/errors.js';

const stacks: Stack[] = [];
after(async () => {
  for (const s of stacks) await s.stop();
});

const DEADLINE_MS = 90_000;

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = DEADLINE_MS): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function dbFile(stack: Stack): string {
  return path.join(stack.dir, 'data', 'spike.db');
}

/** The store's commit counter, read from the file (the record's bytes 1..9; the MAC is Nexus's business). */
function storeCounter(stack: Stack): number {
  const db = new Database(dbFile(stack), { readonly: true, fileMustExist: true });
  try {
    const v = db.prepare(`SELECT value FROM system WHERE key = 'commit_anchor'`).pluck().get() as Buffer | undefined;
    return v ? Number(v.readBigUInt64BE(1)) : 0;
  } finally {
    db.close();
  }
}

async function metrics(stack: Stack): Promise<ReturnType<typeof parsePrometheusText>> {
  return parsePrometheusText(await (await fetch(`${stack.nexusOpsUrl()}/metrics`)).text());
}

/** Waits until every Keeper acknowledged an anchor at least as high as the store's counter now. */
async function anchorReachedKeepers(stack: Stack): Promise<number> {
  const want = storeCounter(stack);
  assert.ok(want > 0, 'the store has a commit counter');
  return until(`anchor ${want} at every keeper`, async () => {
    const m = await metrics(stack);
    const acked = [1, 2, 3].map((k) => m.samples.find((s) => s.name === 'spike_keeper_anchor_counter' && s.labels['keeper'] === String(k))?.value ?? 0);
    return acked.every((c) => c >= want) ? want : undefined;
  });
}

async function writeSecrets(c: NexusClient, prefix: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await c.putSecret(`${prefix}/${i}`, { v: `${prefix}-${i}` });
}

/** Starts Nexus again and checks every sign of the refusal. */
async function expectRefused(stack: Stack, auditFile: string): Promise<void> {
  await stack.startNexus();
  const ready = await until('readyz naming rollback', async () => {
    const r = await fetch(`${stack.nexusOpsUrl()}/readyz`);
    const body = await r.text();
    return r.status === 503 && body.includes('"rollback"') ? body : undefined;
  });
  assert.doesNotMatch(ready, /secret|shard/i);
  const c = await stack.client('pilot');
  await assert.rejects(c.getSecret('rb/old/0'), (e: unknown) => e instanceof NexusApiError && e.status === 503 && e.wireErr === 'state_rollback_detected');
  const m = await metrics(stack);
  assert.equal(m.samples.find((s) => s.name === 'spike_rollback_detected')?.value, 1);
  assert.match(stack.logs(stack.nexusName()), /STATE ROLLBACK DETECTED/);
  await until('audit event rollback.detected', async () => (fs.readFileSync(auditFile, 'utf8').includes('"rollback.detected"') ? true : undefined));
  // The CLI names the cause in one line.
  const get = await stack.spike(['secret', 'get', 'rb/old/0']);
  assert.notEqual(get.code, 0);
  assert.match(get.stderr, /state rollback detected/);
}

async function acceptAndServe(stack: Stack, auditFile: string): Promise<NexusClient> {
  const r = await stack.spike(['operator', 'accept-rollback']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Rollback accepted/);
  await stack.waitReady(DEADLINE_MS);
  assert.match(fs.readFileSync(auditFile, 'utf8'), /"rollback\.accepted"/);
  const again = await stack.spike(['operator', 'accept-rollback']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /Nothing to accept/);
  return stack.client('pilot');
}

/** A stack with an audit log, 5 secrets under `rb/old` written and their anchor at every Keeper. */
async function stackWithOldWrites(): Promise<{ stack: Stack; auditFile: string; c: NexusClient }> {
  const auditFile = path.join(tempDir('spike-rb-audit-'), 'audit.log');
  const stack = await Stack.start({ ops: true, nexusEnv: { SPIKE_NEXUS_AUDIT_LOG: auditFile } });
  stacks.push(stack);
  const c = await stack.client('pilot');
  await writeSecrets(c, 'rb/old', 5);
  await anchorReachedKeepers(stack);
  return { stack, auditFile, c };
}

test('STO-03 (a) a store replaced by an older copy while the Keepers stayed up is refused until accepted', async () => {
  const { stack, auditFile, c } = await stackWithOldWrites();
  const copy = path.join(tempDir('spike-rb-copy-'), 'older.db');
  const b = await stack.run('spike-nexus', ['backup', copy], stack.nexusEnv());
  assert.equal(b.code, 0, b.stderr);
  await writeSecrets(c, 'rb/new', 5);
  await anchorReachedKeepers(stack);

  await stack.killNexus('SIGKILL');
  for (const f of ['spike.db', 'spike.db-wal', 'spike.db-shm']) fs.rmSync(path.join(stack.dir, 'data', f), { force: true });
  fs.copyFileSync(copy, dbFile(stack));
  fs.chmodSync(dbFile(stack), 0o600);

  await expectRefused(stack, auditFile);
  const c2 = await acceptAndServe(stack, auditFile);
  assert.equal((await c2.getSecret('rb/old/4'))['v'], 'rb/old-4');
  await assert.rejects(c2.getSecret('rb/new/0'), (e: unknown) => e instanceof NexusApiError && e.code === 'api_not_found');

  // Re-anchored above the Keepers: a restart serves without a new refusal.
  await c2.putSecret('rb/after', { v: '1' });
  await anchorReachedKeepers(stack);
  await stack.killNexus('SIGKILL');
  await stack.startNexus();
  await stack.waitReady(DEADLINE_MS);
  assert.equal((await (await stack.client('pilot')).getSecret('rb/after'))['v'], '1');
});

test('STO-03 (b) a WAL cut after acknowledged commits is detected, refused, then accepted by command', async () => {
  const { stack, auditFile, c } = await stackWithOldWrites();
  const wal = `${dbFile(stack)}-wal`;
  const cut = fs.statSync(wal).size;
  await writeSecrets(c, 'rb/new', 5);
  await anchorReachedKeepers(stack);
  assert.ok(fs.statSync(wal).size > cut, 'the last writes are in the WAL');

  await stack.killNexus('SIGKILL');
  fs.truncateSync(wal, cut);
  fs.rmSync(`${dbFile(stack)}-shm`, { force: true });

  await expectRefused(stack, auditFile);
  const c2 = await acceptAndServe(stack, auditFile);
  assert.equal((await c2.getSecret('rb/old/4'))['v'], 'rb/old-4');
  await assert.rejects(c2.getSecret('rb/new/4'), (e: unknown) => e instanceof NexusApiError && e.code === 'api_not_found');
});

test('attack-rollback-evidence-lost: a copy put back before the newest anchor reached the Keepers, detected while serving, is still refused after kill -9 and restart', async () => {
  const { stack, auditFile, c } = await stackWithOldWrites();
  const copy = path.join(tempDir('spike-rb-copy-'), 'older.db');
  const b = await stack.run('spike-nexus', ['backup', copy], stack.nexusEnv());
  assert.equal(b.code, 0, b.stderr);
  // Newer writes, and the copy put back at once (the anchor push waits 500 ms after writes):
  // only this Nexus knows of the newer counters when it detects the rollback.
  await writeSecrets(c, 'rb/new', 5);
  const src = new Database(copy, { readonly: true });
  await src.backup(dbFile(stack));
  src.close();
  await assert.rejects(c.putSecret('rb/detect', { v: '1' }), (e: unknown) => e instanceof NexusApiError && e.status === 503);
  await until('the evidence handed to the keepers', async () => (/the keepers hold the rollback evidence/.test(stack.logs(stack.nexusName())) ? true : undefined));

  await stack.killNexus('SIGKILL');
  await expectRefused(stack, auditFile);
  const c2 = await acceptAndServe(stack, auditFile);
  await assert.rejects(c2.getSecret('rb/new/0'), (e: unknown) => e instanceof NexusApiError && e.code === 'api_not_found');
});
