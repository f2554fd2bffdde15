/**
 * Issue 13 acceptance "audit disk full" on real processes: Nexus (SQLite store in the stack's
 * own folder) writes its audit trail onto a tiny real tmpfs (1 MiB), which a filler file then
 * fills up. From then on every request is refused with 503 `state_not_ready` and `message`
 * "audit log unavailable: disk full" (the cause named, no restore advice in the log), nothing
 * changes in the store (a refused PUT is not readable afterwards, a refused overwrite left the
 * old value), and every write acknowledged with a 2xx before has its intent entry on disk
 * (matched by the X-Request-Id of its answer). The log says so once (bounded), the failure
 * counter moves, and the CLI says what to do (free space; no restore). Once the filler is
 * removed (space freed), requests succeed again without a restart and the whole trail still
 * verifies, MACs included (`spike audit verify --shard`).
 * Needs root (mount); skipped otherwise.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Stack } from '../helpers/stack.js';
import { parsePrometheusText, sumOf } from '../helpers/prom-text.js';
import { type RawClient, type RawReply, rawClient, waitFor } from './secrets-helpers.js';

const S = '/v1/store/secrets';
const VALUE = 'audit-full-v4lue-5e1f';

function mount(dir: string, opts: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir], { stdio: 'ignore' }).status === 0;
}

const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-tmpfs-probe-'));
const canMount = mount(probe, 'size=64k');
if (canMount) spawnSync('umount', [probe]);
fs.rmdirSync(probe);

/** Writes `file` until the file system refuses (ENOSPC); returns the bytes written. */
function fillUp(file: string): number {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(4096, 0x2e);
  let total = 0;
  try {
    for (;;) {
      try {
        total += fs.writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return total;
        throw e;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

const rid = (r: RawReply): string => {
  const v = r.headers['x-request-id'];
  assert.match(String(v), /^[0-9a-f]{16}$/);
  return String(v);
};

/** The intent entries on disk now, by request ID (every line must parse: no torn line). */
/**
 * The intent entries on disk. `result` entries are written after the answer, without the
 * request waiting; one that fails on the full disk may leave a partial line for the moment
 * until the writer cuts the file back to its last durable line: wait for that (bounded).
 */
async function intents(file: string): Promise<Map<string, Record<string, unknown>>> {
  const out = new Map<string, Record<string, unknown>>();
  let text = '';
  await waitFor(() => {
    text = fs.readFileSync(file, 'utf8');
    return text === '' || text.endsWith('\n');
  }, 10_000, 'the trail ends with a complete line');
  for (const line of text.split('\n').slice(0, -1)) {
    const e = JSON.parse(line) as Record<string, unknown>;
    if (e['phase'] === 'intent') out.set(String(e['requestId']), e);
  }
  return out;
}

test('audit disk full: refused with a named 503, nothing changes, no acknowledged write without its entry; freed → works, trail verifies',
  { skip: canMount ? false : 'cannot mount a tmpfs here (needs root)', timeout: 300_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-audit-full-'));
    assert.ok(mount(dir, 'size=1m'));
    const auditFile = path.join(dir, 'audit.log');
    let stack: Stack | undefined;
    let pilot: RawClient | undefined;
    try {
      stack = await Stack.start({ ops: true, nexusEnv: { SPIKE_NEXUS_AUDIT_LOG: auditFile } });
      pilot = await rawClient(stack, 'pilot');
      const put = (p: string, v = VALUE): Promise<RawReply> => pilot!.post(S, { path: p, values: { v } });
      const get = (p: string): Promise<RawReply> => pilot!.post(`${S}?action=get`, { path: p });
      /** Acknowledged writes: request ID → path. */
      const acked = new Map<string, string>();

      for (let i = 0; i < 5; i++) {
        const p = `full/ok-${String(i).padStart(3, '0')}`;
        const r = await put(p);
        assert.equal(r.status, 200, r.body);
        acked.set(rid(r), p);
      }

      // Fill the audit file system. The audit file's last page may still take a few lines,
      // so write until the first refusal (bounded).
      const filler = path.join(dir, 'filler');
      assert.ok(fillUp(filler) > 0);
      let first: RawReply | undefined;
      const refusedPaths: string[] = [];
      for (let i = 0; i < 200 && first === undefined; i++) {
        const p = `full/w-${String(i).padStart(3, '0')}`;
        const r = await put(p);
        if (r.status === 200) acked.set(rid(r), p);
        else {
          first = r;
          refusedPaths.push(p);
        }
      }
      assert.ok(first, 'the audit file system never filled up');
      assert.equal(first.status, 503, first.body);
      assert.deepEqual(first.json, { err: 'state_not_ready', message: 'audit log unavailable: disk full' });
      rid(first);

      // From now on every request is refused, and the same way: new paths, an overwrite, a read.
      for (let i = 0; i < 10; i++) {
        const p = `full/refused-${String(i).padStart(3, '0')}`;
        const r = await put(p);
        assert.equal(r.status, 503, `refused put ${i}: ${r.body}`);
        assert.deepEqual(r.json, first.json);
        refusedPaths.push(p);
      }
      const overwrite = await put('full/ok-000', 'overwritten-while-full');
      assert.equal(overwrite.status, 503);
      // The CLI names the cause and gives advice that fits (no restore).
      const cli = await stack.spike(['secret', 'put', 'full/cli', 'k=v']);
      assert.equal(cli.code, 1);
      assert.match(cli.stderr, /disk that holds its audit log is full/);
      assert.ok(!cli.stderr.includes('operator restore'), cli.stderr);
      refusedPaths.push('full/cli');
      const read = await get('full/ok-001');
      assert.equal(read.status, 503, 'a read whose entry cannot be written is refused too');
      assert.ok(!read.body.includes(VALUE));

      // No acknowledged write without its intent entry on disk (matched by request ID).
      const onDisk = await intents(auditFile);
      for (const [id, p] of acked) {
        const e = onDisk.get(id);
        assert.ok(e, `acknowledged write ${id} has no intent entry on disk`);
        assert.equal(e['route'], S);
        assert.equal(e['decision'], 'allow');
        assert.match(String(e['path']), /^[0-9a-f]{64}$/, p);
      }
      // …and the refused ones got none (their entry is what could not be written).
      assert.ok(!onDisk.has(rid(first)));

      // The log names the cause, once (bounded), with advice that fits; the counter moves.
      const failLines = stack.logs('nexus').split('\n').filter((l) => l.includes('"event":"audit_failure"'));
      assert.ok(failLines.length >= 1 && failLines.length <= 3, `audit_failure lines: ${failLines.length}`);
      assert.match(failLines[0]!, /"cause":"disk_full"/);
      assert.match(failLines[0]!, /"errno":"ENOSPC"/);
      assert.match(failLines[0]!, /free space on the volume that holds the audit log/);
      assert.ok(!stack.logs('nexus').includes('operator restore'));
      const metrics = parsePrometheusText(await (await fetch(`${stack.nexusOpsUrl()}/metrics`)).text());
      assert.ok(sumOf(metrics, 'spike_audit_failures_total') >= 12, 'audit failures counted');

      // Readiness names the cause (a load balancer takes the node out)…
      const notReady = await fetch(`${stack.nexusOpsUrl()}/readyz`);
      assert.equal(notReady.status, 503);
      assert.deepEqual(await notReady.json(), { ready: false, failing: ['audit_disk_full'] });

      // Free space: readiness comes back with no request arriving (it retries one entry itself),
      // and the next requests succeed, without a restart.
      fs.rmSync(filler);
      await waitFor(async () => (await fetch(`${stack!.nexusOpsUrl()}/readyz`)).status === 200, 30_000, 'readyz 200 after space was freed');
      const again = await put('full/after-free');
      assert.equal(again.status, 200, again.body);
      acked.set(rid(again), 'full/after-free');
      await waitFor(() => stack!.logs('nexus').includes('"event":"audit_recovered"'), 30_000, 'the audit_recovered line');

      // Nothing changed while full: refused PUTs are not readable, the overwrite did not land.
      for (const p of refusedPaths) assert.equal((await get(p)).status, 404, p);
      assert.deepEqual((await get('full/ok-000')).json, { data: { v: VALUE } });
      for (const p of new Set(acked.values())) assert.equal((await get(p)).status, 200, p);

      // Every acknowledged write (before and after) has its entry; the trail verifies, MACs too.
      const final = await intents(auditFile);
      for (const id of acked.keys()) assert.ok(final.has(id), id);
      const recoverDir = path.join(stack.dir, 'shards');
      const rec = await stack.spike(['operator', 'recover', '--dir', recoverDir], { identity: 'recover' });
      assert.equal(rec.code, 0, rec.stderr);
      const shards = fs.readdirSync(recoverDir).filter((f) => f.startsWith('spike.recovery.')).sort().slice(0, 2)
        .flatMap((f) => ['--shard', path.join(recoverDir, f)]);
      const v = await stack.spike(['audit', 'verify', auditFile, ...shards]);
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /Audit trail OK: \d+ entries in 1 file\(s\), chain intact; [1-9]\d* MACs verified/);

      // Canary: no plaintext path or value in the trail or in the refusals.
      const text = fs.readFileSync(auditFile, 'utf8');
      for (const c of ['full/', VALUE, 'overwritten-while-full']) assert.ok(!text.includes(c), c);
      assert.ok(!first.body.includes('full/'));
    } finally {
      await pilot?.close().catch(() => undefined);
      await stack?.stop().catch(() => undefined);
      spawnSync('umount', ['-l', dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
