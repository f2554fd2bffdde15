/**
 * Request ids (exchange.ts): drawn from a pool of random bytes refilled when used up, they
 * stay 16 hex digits and never repeat across refills.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLogger } from '../lib/index.js';
import { newExchange } from './exchange.js';
import { lingerLimits } from './linger.js';
import { defaultErrorShape } from './reply.js';

test('request ids: 16 hex digits, distinct over several pool refills', () => {
  const log = createLogger({ component: 'test', level: 'silent' });
  const req = {} as IncomingMessage;
  const res = {} as ServerResponse;
  const seen = new Set<string>();
  const n = 3 * 512 + 7; // a 4 KiB pool holds 512 ids: crosses three refills
  for (let i = 0; i < n; i++) {
    const { requestId } = newExchange(req, res, lingerLimits(), log, defaultErrorShape);
    assert.match(requestId, /^[0-9a-f]{16}$/);
    seen.add(requestId);
  }
  assert.equal(seen.size, n);
});
