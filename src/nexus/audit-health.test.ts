/**
 * The audit health tracker: one error line when a cause starts or changes, a bounded summary
 * while it lasts, one warn line on recovery; a closed writer is not a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { AuditUnavailableError } from '../audit/index.js';
import { createLogger } from '../lib/index.js';
import { auditHealth } from './audit-health.js';

const errno = (code: string): AuditUnavailableError => new AuditUnavailableError(Object.assign(new Error('x /a/path'), { code }));

test('audit health: named once, bounded while it lasts, recovery said once', () => {
  const out: string[] = [];
  const logger = createLogger({ component: 't', level: 'info', destination: new Writable({ write(c, _e, cb) { out.push(String(c)); cb(); } }) });
  let now = 0;
  const h = auditHealth(logger, { intervalMs: 1000, now: () => now });
  h.written();
  assert.equal(out.length, 0);
  for (let i = 0; i < 500; i++) {
    h.failed(errno('ENOSPC'));
    now += 5;
  }
  assert.equal(h.current(), 'disk_full');
  const lines = out.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.length >= 2 && lines.length <= 4, `${lines.length} lines for 500 failures over 2.5 s`);
  assert.equal(lines[0]!['event'], 'audit_failure');
  assert.equal(lines[0]!['cause'], 'disk_full');
  assert.equal(lines[0]!['errno'], 'ENOSPC');
  assert.match(String(lines[0]!['msg']), /^audit log unavailable: disk full: free space/);
  assert.ok(!out.join('').includes('/a/path'), 'never the error message (it may name a path)');
  h.failed(errno('EROFS'));
  assert.equal(h.current(), 'read_only');
  assert.match(out.at(-1)!, /read-only storage/);
  h.failed(new AuditUnavailableError());
  assert.equal(h.current(), 'read_only', 'a closed writer is not a storage failure');
  const before = out.length;
  h.written();
  h.written();
  assert.equal(out.length, before + 1);
  assert.match(out.at(-1)!, /"event":"audit_recovered"/);
  assert.equal(h.current(), null);
});
