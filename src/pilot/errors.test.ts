/**
 * The CLI's advice fits the store failure Nexus named: free space for a full disk, the
 * mount for read-only storage, the database for an unreachable one — never a restore.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NexusApiError } from '../sdk/index.js';
import { describeError } from './errors.js';

test('store failures named by Nexus get advice that fits, without `spike operator restore`', () => {
  const line = (storeFailure?: 'disk_full' | 'read_only' | 'unreachable' | 'io_error'): string =>
    describeError(new NexusApiError('state_not_ready', { status: 503, wireErr: 'state_not_ready', ...(storeFailure ? { storeFailure } : {}) }), 'secret').line;
  assert.match(line('disk_full'), /disk .* is full\. Free space/);
  assert.match(line('read_only'), /read-only\. Check that the data volume is mounted read-write/);
  assert.match(line('unreachable'), /cannot reach its database\. Check that the database server is up/);
  assert.match(line('io_error'), /I\/O error/);
  for (const c of ['disk_full', 'read_only', 'unreachable', 'io_error'] as const) assert.ok(!line(c).includes('operator restore'), c);
  // without a named cause the generic answer stays
  assert.match(line(), /not ready yet/);
});
