/**
 * The Nexus audit hook on the real route table: the intent entry is durable before the
 * handler runs, and a request whose entry cannot be written is refused (503
 * state_not_ready, "audit log unavailable") with nothing changed; the superuser routes
 * /v1/audit/hash and /v1/audit/verify.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RequestAuditor } from '../http/index.js';
import { createLogger } from '../lib/index.js';
import { verifyTrail } from '../audit/index.js';
import { type RouteHarness, startRouteHarness } from '../../test/helpers/route-harness.js';
import { type NexusAudit, openNexusAudit } from './audit.js';
import { secretRoutes } from './routes/secrets.js';
import { auditRoutes } from './routes/audit.js';
import { AuditKeys, AuditWriter } from '../audit/index.js';
import { AUDIT_FAILURE_MESSAGE, AUDIT_VERIFY_LIMITS, ApiError, ERR } from '../protocol/index.js';

const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-nexus-audit-'));
const file = path.join(dir, 'audit.log');
let audit: NexusAudit | undefined;
const lazy: RequestAuditor = {
  intent: (e, b) => audit!.auditor.intent(e, b),
  result: (e) => audit!.auditor.result(e),
};
let h: RouteHarness | undefined;
after(async () => {
  await h?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('audit hook: entries with request ID and HMAC path; fail closed when the log is gone', async () => {
  h = await startRouteHarness({ modules: [secretRoutes], auditor: lazy });
  audit = openNexusAudit({ file, maxBytes: 1 << 20, keys: h.ctx.keys, logger: createLogger({ component: 't', level: 'silent' }) });
  const hashPath = audit.writer.hashPath.bind(audit.writer);
  let hmacs = 0;
  audit.writer.hashPath = (p: string) => {
    hmacs += 1;
    return hashPath(p);
  };
  const put = await h.post('/v1/store/secrets', { path: 'a/secret/path', values: { k: 'topsecretvalue' } }, PILOT);
  assert.equal(put.status, 200);
  const rid = put.headers['x-request-id'];
  assert.match(String(rid), /^[0-9a-f]{16}$/);
  // The result entry is written after the answer (deferred: with the next intent, or within DEFER_MS).
  const entriesOf = (text: string): Array<Record<string, unknown>> => text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const deadline = Date.now() + 10_000;
  while (entriesOf(fs.readFileSync(file, 'utf8')).filter((e) => e['requestId'] === rid).length < 2 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const text = fs.readFileSync(file, 'utf8');
  const mine = entriesOf(text).filter((e) => e['requestId'] === rid);
  assert.deepEqual(mine.map((e) => e['phase']), ['intent', 'result']);
  assert.equal(hmacs, 1, 'the intent and the result entry share one HMAC of the path');
  assert.equal(mine[0]!['path'], audit.writer.hashPath('a/secret/path'));
  assert.equal(mine[1]!['path'], mine[0]!['path']);
  assert.equal(mine[1]!['status'], 200);
  assert.ok(!text.includes('a/secret/path') && !text.includes('topsecretvalue'));
  assert.equal(verifyTrail([{ name: 'audit.log', text }]).ok, true);

  await audit.close(); // the log is gone: every allowed request must be refused, and change nothing
  const refused = await h.post('/v1/store/secrets', { path: 'b/path', values: { k: 'v' } }, PILOT);
  assert.equal(refused.status, 503);
  assert.deepEqual(refused.json, { err: 'state_not_ready', message: 'audit log unavailable' } as unknown, 'closed: no cause to name');
  assert.equal(await h.ctx.store.getSecret('b/path'), null);
  assert.equal(await h.ctx.store.getSecret('a/secret/path').then((s) => s?.values['k']), 'topsecretvalue');
});

test('POST /v1/audit/hash: the superuser gets the trail HMAC of a path; anyone else 401', async () => {
  const h2 = await startRouteHarness({ modules: [auditRoutes] });
  try {
    const r = await h2.post('/v1/audit/hash', { path: 'a/secret/path' }, PILOT);
    assert.equal(r.status, 200);
    const keys = new AuditKeys(h2.ctx.keys.root());
    assert.deepEqual(r.json, { hash: keys.hashPath('a/secret/path') });
    keys.destroy();
    for (const who of ['spiffe://spike.ist/workload/app', 'spiffe://spike.ist/spike/pilot/role/recover', 'spiffe://spike.ist/spike/workload/role/lite']) {
      assert.equal((await h2.post('/v1/audit/hash', { path: 'a/secret/path' }, who)).status, 401, who);
    }
    assert.equal((await h2.post('/v1/audit/hash', { path: '' }, PILOT)).status, 400);
  } finally {
    await h2.close();
  }
});

test('POST /v1/audit/verify: the superuser learns only which line first fails; anyone else 401; bounded bodies', async () => {
  const h3 = await startRouteHarness({ modules: [auditRoutes] });
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-nexus-audit-verify-'));
  try {
    const w = new AuditWriter({ file: path.join(d, 'audit.log') });
    w.useKeys(new AuditKeys(h3.ctx.keys.root()));
    await Promise.all([1, 2, 3].map((i) => w.append({ type: 'event', event: `e${i}` })));
    await w.close();
    const ls = fs.readFileSync(path.join(d, 'audit.log'), 'utf8').trimEnd().split('\n');
    const ok = await h3.post('/v1/audit/verify', { entries: ls }, PILOT);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { verified: 3, firstInvalid: null });
    const edited = [ls[0]!, ls[1]!.replace('"e2"', '"e9"'), ls[2]!];
    const bad = await h3.post('/v1/audit/verify', { entries: edited }, PILOT);
    assert.deepEqual(bad.json, { verified: 1, firstInvalid: 1 });
    assert.ok(!/[0-9a-f]{64}/.test(bad.body) && !/[0-9a-f]{64}/.test(ok.body), 'no MAC or other key-derived value in the answer');
    for (const who of ['spiffe://spike.ist/workload/app', 'spiffe://spike.ist/spike/pilot/role/recover', 'spiffe://spike.ist/spike/workload/role/lite']) {
      assert.equal((await h3.post('/v1/audit/verify', { entries: ls }, who)).status, 401, who);
    }
    const tooMany = Array.from({ length: AUDIT_VERIFY_LIMITS.maxEntries + 1 }, () => ls[0]!);
    const tooLong = ['x'.repeat(AUDIT_VERIFY_LIMITS.maxEntryLength + 1)];
    for (const body of [{ entries: [] }, { entries: tooMany }, { entries: tooLong }, { entries: [1] }, {}]) {
      const r = await h3.post('/v1/audit/verify', body, PILOT);
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 60));
      assert.equal((r.json as { err?: string }).err, 'api_bad_request');
    }
  } finally {
    await h3.close();
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('router audit hook: a named refusal (ApiError) is answered as it is; any other rejection gets the generic 503', async () => {
  let reject: unknown = new Error('EIO somewhere');
  const hook: RequestAuditor = { intent: () => Promise.reject(reject), result: () => undefined };
  const h4 = await startRouteHarness({ modules: [secretRoutes], auditor: hook });
  try {
    const generic = await h4.post('/v1/store/secrets', { path: 'c/path', values: { k: 'v' } }, PILOT);
    assert.deepEqual([generic.status, generic.json], [503, { err: 'state_not_ready', message: 'audit log unavailable' }]);
    reject = new ApiError(ERR.notReady, AUDIT_FAILURE_MESSAGE.disk_full, { expose: true });
    const named = await h4.post('/v1/store/secrets', { path: 'c/path', values: { k: 'v' } }, PILOT);
    assert.deepEqual([named.status, named.json], [503, { err: 'state_not_ready', message: 'audit log unavailable: disk full' }]);
    assert.equal(await h4.ctx.store.getSecret('c/path'), null, 'nothing ran');
  } finally {
    await h4.close();
  }
});
