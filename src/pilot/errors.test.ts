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

test('a store failure inside refresh-shares or reshare says it may have stopped part-way (never "did not run")', () => {
  for (const command of ['refresh-shares', 'reshare'] as const) {
    const e = new NexusApiError('state_not_ready', { status: 503, wireErr: 'state_not_ready', storeFailure: 'unreachable' });
    const line = describeError(e, 'operator', command).line;
    assert.match(line, /cannot reach its database/);
    assert.match(line, /may have stopped part-way/);
    assert.match(line, new RegExp(`spike operator ${command}\` again.*spike operator recover`));
    assert.ok(!line.includes('did not run'), line);
    // an audit refusal happens before the handler: nothing ran
    const audit = describeError(new NexusApiError('state_not_ready', { status: 503, wireErr: 'state_not_ready', storeFailure: 'audit_disk_full' }), 'operator', command).line;
    assert.ok(!audit.includes('part-way'), audit);
  }
});

test('ATTACK cipher input over the stream cap: the reset mid-stream is named as such, not as a local file failure', () => {
  for (const code of ['ECONNRESET', 'UND_ERR_SOCKET']) {
    const d = describeError(Object.assign(new Error('other side closed'), { code }), 'cipher', 'encrypt');
    assert.equal(d.exitCode, 1);
    assert.match(d.line, /^Error: SPIKE Nexus closed the connection during the cipher stream \([A-Z_]+\); no complete output was produced\. .*64 MiB by default/);
    assert.ok(!d.line.includes('\n'));
  }
  // other groups keep the generic local-I/O line
  assert.match(describeError(Object.assign(new Error('x'), { code: 'ENOSPC' }), 'cipher').line, /local file or stream operation failed \(ENOSPC\)/);
});

test('a sharing move refused because another holds the move lock (409) says so and to retry shortly, for every move command', () => {
  for (const command of ['refresh-shares', 'reshare', 'rotate-root-key'] as const) {
    const line = describeError(new NexusApiError('api_conflict', { status: 409, wireErr: 'api_conflict' }), 'operator', command).line;
    assert.match(line, /holds the move lock \(it is running, or it was interrupted and its lock has not expired yet\); nothing was changed\. Try again in a few seconds\.$/, line);
    assert.ok(!line.includes('\n'));
  }
});

test('rotate-root-key refused because a Keeper did not acknowledge (503 state_not_ready) says so, never advises a restore', () => {
  const line = describeError(new NexusApiError('state_not_ready', { status: 503, wireErr: 'state_not_ready' }), 'operator', 'rotate-root-key').line;
  assert.match(line, /root-key rotation did not take place: .*not every Keeper acknowledged .*current root key stays in force/);
  assert.ok(!line.includes('operator restore'), line);
  // a store failure keeps its own advice
  const store = describeError(new NexusApiError('state_not_ready', { status: 503, wireErr: 'state_not_ready', storeFailure: 'unreachable' }), 'operator', 'rotate-root-key').line;
  assert.match(store, /cannot reach its database/);
});

test('a move command that timed out waiting for Nexus says the move may still complete there; a refused connection does not', () => {
  const url = 'https://nexus.example:8553';
  const timedOut = new NexusApiError('net_peer_connection', { attempts: [{ url, failure: { class: 'timeout' } }] });
  for (const command of ['refresh-shares', 'reshare', 'rotate-root-key'] as const) {
    const line = describeError(timedOut, 'operator', command).line;
    assert.match(line, new RegExp(`^Error: Cannot reach SPIKE Nexus at ${url} \\(timeout\\)\\. The ${command} request may still complete on SPIKE Nexus`), line);
  }
  const refused = new NexusApiError('net_peer_connection', { attempts: [{ url, failure: { class: 'connection_refused' } }] });
  assert.equal(describeError(refused, 'operator', 'refresh-shares').line, `Error: Cannot reach SPIKE Nexus at ${url} (connection refused).`);
  assert.equal(describeError(timedOut, 'secret', 'get').line, `Error: Cannot reach SPIKE Nexus at ${url} (timeout).`);
});

test('a URL tried again with the same result is named once; different URLs or causes each once, in order', () => {
  const a = 'https://n1.example:8553';
  const b = 'https://n2.example:8553';
  const closed = { class: 'connection_closed' } as const;
  const thrice = new NexusApiError('net_peer_connection', { attempts: [{ url: a, failure: closed }, { url: a, failure: closed }, { url: a, failure: closed }] });
  assert.equal(describeError(thrice, 'secret', 'list').line, `Error: Cannot reach SPIKE Nexus at ${a} (connection closed by the server).`);
  const mixed = new NexusApiError('net_peer_connection', { attempts: [{ url: a, failure: closed }, { url: b, failure: { class: 'connection_refused' } }, { url: a, failure: closed }] });
  assert.equal(describeError(mixed, 'secret', 'list').line, `Error: Cannot reach SPIKE Nexus at ${a} (connection closed by the server), ${b} (connection refused).`);
});

test('a 400 with Nexus\'s own reason shows it; without one the line is as before', () => {
  const withDetail = new NexusApiError('api_bad_request', { status: 400, wireErr: 'api_bad_request', detail: 'request body too large' });
  assert.equal(describeError(withDetail, 'secret', 'put').line, 'Error: Invalid request: request body too large.');
  assert.equal(describeError(new NexusApiError('api_bad_request', { status: 400, wireErr: 'api_bad_request' }), 'secret', 'put').line, 'Error: Invalid request.');
  // a schema error's own "invalid request:" is not said twice
  const schema = new NexusApiError('api_bad_request', { status: 400, wireErr: 'api_bad_request', detail: 'invalid request: values.* must be a string' });
  assert.equal(describeError(schema, 'secret', 'put').line, 'Error: Invalid request: values.* must be a string.');
});
