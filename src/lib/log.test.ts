import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, parseLevel } from './log.js';

function capture(): { stream: Writable; lines: () => string[] } {
  const chunks: string[] = [];
  const stream = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb(); } });
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean) };
}

test('LOG: secret-bearing field names are redacted, even nested', () => {
  const { stream, lines } = capture();
  const log = createLogger({ component: 't', level: 'info', destination: stream });
  log.info({ shard: [1, 2, 3], req: { values: { pw: 'canary-7731' } }, route: '/v1/store/secrets' }, 'x');
  const out = lines().join('\n');
  assert.ok(!out.includes('canary-7731'));
  assert.ok(!out.includes('[1,2,3]'));
  const rec = JSON.parse(lines()[0]!) as Record<string, unknown>;
  assert.equal(rec['component'], 't');
  assert.equal(rec['route'], '/v1/store/secrets');
  assert.equal(rec['level'], 'info');
});

test('LOG: redaction goes by content: share values hidden, share counts and flags kept', () => {
  const { stream, lines } = capture();
  const log = createLogger({ component: 't', level: 'info', destination: stream });
  const share = new Uint8Array([201, 202, 203, 204]);
  log.info({ shares: 2, need: 3, share: 7, key: null }, 'counts');
  log.info({ shares: [share], share, shard: [201, 202], key: 'c2VjcmV0LWtleS1jYW5hcnk=', value: { a: 7 }, values: Buffer.from('canary-buf') }, 'material');
  log.info({ nested: { shares: 4, share: share, secret: 'canary-nested' } }, 'nested');
  const [counts, material, nested] = lines().map((l) => JSON.parse(l) as Record<string, unknown>);
  // Counts pass; a singular key-material name is hidden even when it holds a number (a byte of a key).
  assert.deepEqual([counts!['shares'], counts!['need'], counts!['share'], counts!['key']], [2, 3, '[redacted]', '[redacted]']);
  for (const k of ['shares', 'share', 'shard', 'key', 'value', 'values']) assert.equal(material![k], '[redacted]', k);
  assert.deepEqual(nested!['nested'], { shares: 4, share: '[redacted]', secret: '[redacted]' });
  // Searched without the time, pid and host name, which may contain "201" by chance (a flaky
  // failure in CI: a timestamp with those digits).
  const out = lines().map((l) => {
    const { time: _t, pid: _p, hostname: _h, ...rest } = JSON.parse(l) as Record<string, unknown>;
    return JSON.stringify(rest);
  }).join('\n');
  for (const leak of ['201', 'c2VjcmV0', 'canary']) assert.ok(!out.includes(leak), leak);
});

test('LOG: SPIKE_SYSTEM_LOG_LEVEL parsing falls back to warn like SPIKE', () => {
  assert.equal(parseLevel('debug'), 'debug');
  assert.equal(parseLevel(' Info '), 'info');
  assert.equal(parseLevel('verbose'), 'warn');
  assert.equal(parseLevel(undefined), 'warn');
});
