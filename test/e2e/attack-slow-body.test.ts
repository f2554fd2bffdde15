/**
 * ATTACK: a request body trickled one byte per second (SEC-02, FI-08 short form) against the
 * real spike-nexus over real mTLS. Node's own request timeout would hold such a request for a
 * minute and then drop the connection without an answer; the router's JSON body deadline
 * answers 408 (`{"err":"api_bad_request","message":"request body timed out"}`) within the
 * catalogue's 15 s ceiling, closes the connection, stores nothing, and a well-behaved client
 * is served meanwhile. A stream body (cipher stream encrypt, `application/octet-stream`) has no
 * whole-body deadline but a minimum pace (16 KiB/s averaged over 10 s of waiting): trickled,
 * it gets 408 "request body too slow" about 10 s in, not the listener's 60 s drop (FI-08).
 *
 * Both tests wait on the server's own clocks (10–15 s each) and touch different routes, so
 * they run at the same time on one stack: a trickle on each, and the JSON test's fast client
 * is served while both hold their requests open.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Stack } from '../helpers/stack.js';
import { WorkloadX509Source } from '../../src/spiffe/index.js';
import { trickle } from './attack-helpers.js';
import { type RawClient, rawClient } from './secrets-helpers.js';

const NEXUS_ID = 'spiffe://spike.ist/spike/nexus';

let stack: Stack;
let source: WorkloadX509Source;
let pilot: RawClient;

before(async () => {
  stack = await Stack.start({ backend: 'memory' });
  source = await WorkloadX509Source.open({ endpoint: stack.socket('pilot'), timeoutMs: 15_000 });
  pilot = await rawClient(stack, 'pilot');
});

after(async () => {
  await pilot?.close();
  source?.close();
  await stack?.stop();
});

describe('slow request bodies (both trickles at once)', { concurrency: true }, () => {
  test('SEC-02 / FI-08: a JSON body trickled at 1 byte/s gets 408 with the error shape within 15 s and the connection is closed; nothing is stored', async () => {
    const body = JSON.stringify({ path: 'slow/body', values: { k: 'v'.repeat(100) } });
    const pending = trickle({ source, url: stack.nexusUrl, serverId: NEXUS_ID, path: '/v1/store/secrets', body, everyMs: 1_000, giveUpMs: 40_000 });
    // A well-behaved client is served while the trickle holds its request open.
    const put = await pilot.post('/v1/store/secrets', { path: 'fast/ok', values: { k: 'v' } });
    assert.equal(put.status, 200);
    const r = await pending;
    assert.match(r.answer, /^HTTP\/1\.1 408 /, r.answer.slice(0, 80));
    assert.match(r.answer, /\r\nConnection: close\r\n/i);
    const json = r.answer.slice(r.answer.indexOf('\r\n\r\n') + 4);
    assert.deepEqual(JSON.parse(json), { err: 'api_bad_request', message: 'request body timed out' });
    assert.ok(r.answeredAfterMs > 0 && r.answeredAfterMs < 15_000, `answered after ${r.answeredAfterMs.toFixed(0)} ms`);
    assert.ok(r.bytesSent < body.length, 'the whole body was sent: nothing was timed out');
    const list = await pilot.post('/v1/store/secrets?action=list', {});
    assert.deepEqual(list.json, { keys: ['fast/ok'] });
  });

  test('FI-08: a cipher stream encrypt body trickled at 1 byte/s gets 408 "request body too slow" (in the route\'s error shape) within 20 s, not the 60 s request timeout; the connection is closed', async () => {
    const body = 'x'.repeat(4096);
    const r = await trickle({
      source, url: stack.nexusUrl, serverId: NEXUS_ID, path: '/v1/cipher/encrypt', body, everyMs: 1_000, giveUpMs: 50_000, contentType: 'application/octet-stream',
    });
    assert.match(r.answer, /^HTTP\/1\.1 408 /, r.answer.slice(0, 80));
    assert.match(r.answer, /\r\nConnection: close\r\n/i);
    const json = JSON.parse(r.answer.slice(r.answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    assert.deepEqual(json, { version: 0, nonce: null, ciphertext: null, err: 'api_bad_request', message: 'request body too slow' });
    // One 10 s window of waiting (the pace is judged every 10 s), plus scheduling slack.
    assert.ok(r.answeredAfterMs >= 5_000 && r.answeredAfterMs < 20_000, `answered after ${r.answeredAfterMs.toFixed(0)} ms`);
    assert.ok(r.bytesSent < body.length, 'the whole body was sent: nothing was cut');
  });
});
