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

test('LOG: SPIKE_SYSTEM_LOG_LEVEL parsing falls back to warn like SPIKE', () => {
  assert.equal(parseLevel('debug'), 'debug');
  assert.equal(parseLevel(' Info '), 'info');
  assert.equal(parseLevel('verbose'), 'warn');
  assert.equal(parseLevel(undefined), 'warn');
});
