/**
 * Issue 13 part 3 on real processes: Nexus with SPIKE_NEXUS_AUDIT_LOG runs a scripted session
 * (put, get, a denied get, a policy put, an allowed get under that policy); the trail is then
 * checked with `spike audit verify` (chain, and MACs from the recovery shards or online through
 * Nexus), tampered copies are refused at the right line by both, and a canary scan proves no
 * plaintext path or value is in it (nor in /metrics, where the audit counters move).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Stack, TD } from '../helpers/stack.js';

const CANARY_PATH = 'canary/audit/p4th-7f3e';
const CANARY_VALUE = 'v4lue-c4n4ry-91d2';

let stack: Stack;
let auditFile: string;

const auditDir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-audit-e2e-'));

before(async () => {
  auditFile = path.join(auditDir, 'audit.log');
  stack = await Stack.start({
    ops: true,
    identities: { app: `spiffe://${TD}/workload/audit-app` },
    nexusEnv: { SPIKE_NEXUS_AUDIT_LOG: auditFile },
  });
  await stack.waitReady();
});
after(async () => {
  await stack?.stop();
  fs.rmSync(auditDir, { recursive: true, force: true });
});

test('audit trail: scripted session, verified offline, tampering refused, no plaintext', async (t) => {
  const ok = async (args: string[], identity?: string): Promise<string> => {
    const r = await stack.spike(args, identity ? { identity } : {});
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  await ok(['secret', 'put', CANARY_PATH, `password=${CANARY_VALUE}`]);
  assert.match(await ok(['secret', 'get', CANARY_PATH]), new RegExp(CANARY_VALUE));
  const app = await stack.client('app');
  await assert.rejects(app.getSecret(CANARY_PATH), (e: { status?: number }) => e.status === 401);
  await ok(['policy', 'create', '--name', 'audit-app-read', '--spiffeid-pattern', `^spiffe://spike\\.ist/workload/audit-app$`,
    '--path-pattern', '^canary/.*$', '--permissions', 'read']);
  assert.equal((await app.getSecret(CANARY_PATH))['password'], CANARY_VALUE);
  const recoverDir = path.join(stack.dir, 'shards');
  const rec = await stack.spike(['operator', 'recover', '--dir', recoverDir], { identity: 'recover' });
  assert.equal(rec.code, 0, rec.stderr);
  const shards = fs.readdirSync(recoverDir).filter((f) => f.startsWith('spike.recovery.')).sort().slice(0, 2)
    .flatMap((f) => ['--shard', path.join(recoverDir, f)]);

  // Result entries are appended after the response (in order): wait for the last call's, recover's.
  const recoverResult = (): boolean => fs.readFileSync(auditFile, 'utf8').split('\n').some((l) => {
    try {
      const e = JSON.parse(l) as Record<string, unknown>;
      return e['phase'] === 'result' && e['route'] === '/v1/operator/recover';
    } catch {
      return false; // an empty or half-written line
    }
  });
  for (const end = Date.now() + 30_000; !recoverResult();) {
    assert.ok(Date.now() < end, 'the recover result entry never reached the audit file');
    await new Promise((r) => setTimeout(r, 10));
  }
  const text = fs.readFileSync(auditFile, 'utf8');
  const entries = text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

  await t.test('every decision is recorded with request ID, caller, route, HMAC path', () => {
    const reqs = entries.filter((e) => e['type'] === 'request' && e['route'] === '/v1/store/secrets');
    const denies = reqs.filter((e) => e['decision'] === 'deny');
    assert.ok(denies.length >= 1, 'the denied get');
    assert.equal(denies[0]!['caller'], `spiffe://${TD}/workload/audit-app`);
    assert.equal(denies[0]!['status'], 401);
    const intents = reqs.filter((e) => e['phase'] === 'intent');
    assert.ok(intents.length >= 3, 'put, get, allowed get');
    const hashes = new Set(reqs.filter((e) => e['path'] !== undefined).map((e) => e['path']));
    assert.ok(intents.filter((e) => e['action'] !== 'list').every((e) => e['path'] !== undefined), 'intents carry the path HMAC');
    assert.equal(hashes.size, 1, 'one path, one HMAC');
    assert.match(String([...hashes][0]), /^[0-9a-f]{64}$/);
    for (const e of reqs) assert.match(String(e['requestId']), /^[0-9a-f]{16}$/);
    assert.ok(entries.some((e) => e['event'] === 'policy.put'));
    assert.ok(entries.some((e) => e['mac'] === null), 'entries from before the key');
    assert.ok(entries.some((e) => typeof e['mac'] === 'string'), 'keyed entries');
  });

  await t.test('spike audit hash prints the HMAC the trail holds for the path', async () => {
    const h = (await ok(['audit', 'hash', CANARY_PATH])).trim();
    assert.match(h, /^[0-9a-f]{64}$/);
    assert.ok(entries.some((e) => e['path'] === h));
    const denied = await app.auditHash(CANARY_PATH).then(() => 'allowed', (e: { status?: number }) => e.status);
    assert.equal(denied, 401);
  });

  await t.test('metrics count audit writes; no path or value in them', async () => {
    const m = await (await fetch(`${stack.nexusOpsUrl()}/metrics`)).text();
    const writes = /^spike_audit_writes_total (\d+)/m.exec(m);
    assert.ok(writes && Number(writes[1]) >= entries.length - 5, `writes ${writes?.[1]} entries ${entries.length}`);
    assert.match(m, /^spike_audit_failures_total 0$/m);
    for (const c of [CANARY_PATH, CANARY_VALUE, 'audit-app']) assert.ok(!m.includes(c), c);
  });

  await t.test('canary scan: no plaintext path or value', () => {
    for (const c of [CANARY_PATH, CANARY_VALUE, 'p4th-7f3e', 'c4n4ry']) assert.ok(!text.includes(c), c);
  });

  await t.test('spike audit verify: chain alone, then with MACs from the shards', async () => {
    const chain = await ok(['audit', 'verify', auditFile]);
    assert.match(chain, /Audit trail OK: \d+ entries/);
    const macs = await ok(['audit', 'verify', auditFile, ...shards]);
    assert.match(macs, /[1-9]\d* MACs verified/);
  });

  await t.test('spike audit verify --online: the MACs checked by Nexus; only the superuser may ask', async () => {
    const online = await ok(['audit', 'verify', '--online', auditFile]);
    assert.match(online, /Audit trail OK: \d+ entries .* [1-9]\d* MACs verified by SPIKE Nexus/);
    const keyed = text.trimEnd().split('\n').filter((l) => !l.endsWith(',"mac":null}'));
    assert.equal(await app.auditVerify(keyed).then(() => 'allowed', (e: { status?: number }) => e.status), 401);
    const both = await stack.spike(['audit', 'verify', '--online', auditFile, ...shards]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /either --shard files or --online/);
  });

  await t.test('spike audit verify: each kind of tampering is reported at its entry', async () => {
    const lines = text.trimEnd().split('\n');
    const firstKeyed = entries.findIndex((e) => typeof e['mac'] === 'string');
    const k = firstKeyed + 2;
    assert.ok(k < lines.length - 1);
    const cases: Array<[string, string, RegExp]> = [
      ['edit', [...lines.slice(0, k), lines[k]!.replace('"seq":', '"seq": '), ...lines.slice(k + 1)].join('\n') + '\n', new RegExp(`:${k + 1} .*(edited|malformed)`)],
      ['delete', [...lines.slice(0, k), ...lines.slice(k + 1)].join('\n') + '\n', new RegExp(`:${k + 1} .*deleted`)],
      ['swap', [...lines.slice(0, k), lines[k + 1]!, lines[k]!, ...lines.slice(k + 2)].join('\n') + '\n', new RegExp(`:${k + 1} .*reordered`)],
      ['truncate', text.slice(0, text.length - 30), new RegExp(`:${lines.length} .*malformed`)],
      ['forge', text + lines[lines.length - 1]!.replace(/"seq":(\d+)/, (_m, n: string) => `"seq":${Number(n) + 1}`)
        .replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${sha256(lines[lines.length - 1]!)}"`) + '\n', new RegExp(`:${lines.length + 1} .*forged`)],
    ];
    for (const [name, body, want] of cases) {
      const f = path.join(stack.dir, `tampered-${name}.log`);
      fs.writeFileSync(f, body);
      for (const how of [shards, ['--online']]) {
        const r = await stack.spike(['audit', 'verify', f, ...how]);
        assert.equal(r.code, 1, `${name} ${how[0]}: ${r.stdout}`);
        assert.match(r.stderr, want, `${name} ${how[0]}`);
      }
    }
  });
});

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}
