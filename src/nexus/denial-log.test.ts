/**
 * Denials are logged, and bounded: the first denial of a route at once (WARN, visible at the
 * default level), then one summary line per route and interval with the count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../lib/log.js';
import { denialLog } from './denial-log.js';

test('a thousand denials on one route write two lines; other decisions none; metrics still see every event', () => {
  const out: string[] = [];
  const logger = createLogger({ component: 'test', level: 'warn', destination: new Writable({ write(c, _e, cb) { out.push(String(c)); cb(); } }) });
  let seen = 0;
  const log = denialLog(logger, 60_000);
  const obs = log.observe({ started: () => undefined, finished: () => { seen++; } });
  for (let i = 0; i < 1000; i++) obs.finished({ route: '/v1/store/secrets', action: 'get', decision: 'deny', status: 401, seconds: 0 });
  obs.finished({ route: '/v1/store/secrets', action: 'get', decision: 'allow', status: 200, seconds: 0 });
  log.close();
  const lines = out.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(seen, 1001);
  assert.equal(lines.length, 2, JSON.stringify(lines));
  assert.equal(lines[0]!['event'], 'request_denied');
  assert.equal(lines[0]!['route'], '/v1/store/secrets');
  assert.equal(lines[1]!['suppressed'], 999);
});
