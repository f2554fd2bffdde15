import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNexusConfig } from '../../config/index.js';
import { workerAuditFile, workerConfig, workerId } from './worker.js';
import { isListenNow, workerMessage } from './messages.js';

test('each worker writes its own audit chain: audit.log → audit.w2.log (rotation keeps its .N suffixes after)', () => {
  assert.equal(workerAuditFile('/var/log/spike/audit.log', 2), '/var/log/spike/audit.w2.log');
  assert.equal(workerAuditFile('/var/log/spike/audit', 1), '/var/log/spike/audit.w1');
  assert.equal(workerAuditFile('/var/log/spike.d/trail.jsonl', 12), '/var/log/spike.d/trail.w12.jsonl');
});

test('a worker\'s configuration: own audit file and operations port (configured port + id - 1); the scheduled refresh in worker 1 only', () => {
  const cfg = loadNexusConfig({
    SPIKE_NEXUS_BACKEND_STORE: 'postgres', SPIKE_NEXUS_DATABASE_URL: 'postgres://u@127.0.0.1:5432/spike',
    SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,https://b:2,https://c:3', SPIKE_NEXUS_WORKERS: '3',
    SPIKE_NEXUS_AUDIT_LOG: '/a/audit.log', SPIKE_NEXUS_OPS_ADDR: ':9090',
  });
  const w3 = workerConfig(cfg, 3);
  assert.equal(w3.auditLog, '/a/audit.w3.log');
  assert.deepEqual(w3.ops, { host: '127.0.0.1', port: 9092 });
  assert.deepEqual({ ...w3, auditLog: cfg.auditLog, ops: cfg.ops }, cfg);
  const refreshing = { ...cfg, shareRefreshIntervalMs: 3_600_000 };
  assert.equal(workerConfig(refreshing, 1).shareRefreshIntervalMs, 3_600_000, 'worker 1 runs the scheduled refresh');
  assert.equal(workerConfig(refreshing, 2).shareRefreshIntervalMs, 0, 'the others do not');
  const bare = { ...cfg, auditLog: undefined, ops: undefined };
  assert.deepEqual(workerConfig(bare, 2), bare);
});

test('only well-formed worker messages are taken; a reason is cut to 64 characters', () => {
  assert.deepEqual(workerMessage({ kind: 'spike-nexus-listening', port: 8553, ops: null }), { kind: 'spike-nexus-listening', port: 8553, ops: null });
  assert.deepEqual(workerMessage({ kind: 'spike-nexus-holding', extra: 1 }), { kind: 'spike-nexus-holding' });
  assert.equal(workerMessage({ kind: 'spike-nexus-recycle-others', why: 'x'.repeat(100) })?.kind, 'spike-nexus-recycle-others');
  assert.equal((workerMessage({ kind: 'spike-nexus-recycle-others', why: 'x'.repeat(100) }) as { why: string }).why.length, 64);
  for (const bad of [null, 'x', 7, {}, { kind: 'spike-nexus-listening', port: '1', ops: null }, { kind: 'spike-nexus-listening', port: 1, ops: 3 },
    { kind: 'spike-nexus-recycle-others' }, { kind: 'other' }]) assert.equal(workerMessage(bad), undefined, JSON.stringify(bad));
  assert.equal(isListenNow({ kind: 'spike-nexus-listen-now' }), true);
  assert.equal(isListenNow({ kind: 'spike-nexus-listening' }), false);
});

test('outside a cluster worker there is no worker id, whatever the environment says', () => {
  assert.equal(workerId({ SPIKE_NEXUS_WORKER_ID: '2' }), undefined);
});
