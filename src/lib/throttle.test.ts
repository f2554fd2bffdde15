import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from './log.js';
import { createLogThrottle } from './throttle.js';

function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } });
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('LOG flood: 100,000 occurrences of one kind write one detail line and one summary line', () => {
  const { stream, lines } = capture();
  const t = createLogThrottle(createLogger({ component: 't', level: 'info', destination: stream }), { intervalMs: 60_000 });
  for (let i = 0; i < 100_000; i++) t.warn('tls_connection_dropped', { limit: 5 }, 'dropped');
  assert.equal(lines().length, 1, 'only the first occurrence is written at once');
  assert.equal(lines()[0]?.['event'], 'tls_connection_dropped');
  assert.equal(lines()[0]?.['limit'], 5);
  t.close();
  const all = lines();
  assert.equal(all.length, 2);
  assert.equal(all[1]?.['suppressed'], 99_999);
  assert.equal(t.count('tls_connection_dropped'), 100_000);
});

test('LOG flood: kinds are throttled separately; a kind keeps the event name given with it', () => {
  const { stream, lines } = capture();
  const t = createLogThrottle(createLogger({ component: 't', level: 'info', destination: stream }), { intervalMs: 60_000 });
  t.warn('tls_peer_rejected:svid_expired', { event: 'tls_peer_rejected', reason: 'svid_expired' }, 'rejected');
  t.warn('tls_peer_rejected:unauthorized', { event: 'tls_peer_rejected', reason: 'unauthorized' }, 'rejected');
  t.warn('tls_peer_rejected:unauthorized', { event: 'tls_peer_rejected', reason: 'unauthorized' }, 'rejected');
  t.close();
  const all = lines();
  assert.deepEqual(all.map((l) => [l['event'], l['reason'] ?? l['kind'], l['suppressed'] ?? 0]), [
    ['tls_peer_rejected', 'svid_expired', 0],
    ['tls_peer_rejected', 'unauthorized', 0],
    ['tls_peer_rejected', 'tls_peer_rejected:unauthorized', 1],
  ]);
});

test('LOG flood: after the interval the next occurrence is written again (waits for the timer, not a fixed sleep)', async () => {
  const { stream, lines } = capture();
  const t = createLogThrottle(createLogger({ component: 't', level: 'info', destination: stream }), { intervalMs: 20 });
  t.warn('k', {}, 'm');
  t.warn('k', {}, 'm');
  const deadline = Date.now() + 10_000;
  while (lines().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(lines()[1]?.['suppressed'], 1, 'summary written when the interval ended');
  t.warn('k', {}, 'm');
  assert.equal(lines().length, 3, 'a new interval starts with a detail line');
  t.close();
});

test('intervalMs 0 writes every occurrence', () => {
  const { stream, lines } = capture();
  const t = createLogThrottle(createLogger({ component: 't', level: 'info', destination: stream }), { intervalMs: 0 });
  for (let i = 0; i < 5; i++) t.warn('k', {}, 'm');
  t.close();
  assert.equal(lines().length, 5);
});
