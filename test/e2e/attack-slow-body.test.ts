// test-lane: waiting (mostly waits on trickled bodies and deadlines: scripts/run-tests.mjs runs it in the second lane)
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
 *
 * Then FI-07 (slowloris) against the same spike-nexus, scaled down from the catalogue (500 +
 * 200 sockets, a byte every 5 s, timeouts ≤ 10 s) to 60 + 60 sockets, a byte every 400 ms and
 * 2 s timeouts (SPIKE_HTTP_SERVER_READ_HEADER_TIMEOUT / _HANDSHAKE_TIMEOUT, set for this
 * stack; the trickles above send their headers at once and handshake at once, so they do not
 * meet them): verified connections that dribble a request head get 408 at the headers timeout,
 * sockets that never send a ClientHello are closed at the handshake timeout, a warm client is
 * served throughout, Nexus's file descriptors return to their baseline and its log stays small.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import tls from 'node:tls';
import { Stack } from '../helpers/stack.js';
import { drip } from '../helpers/drip.js';
import { silentSocket } from '../helpers/flood.js';
import { WorkloadX509Source, svidChainPem, svidPrivateKeyPem } from '../../src/spiffe/index.js';
import { MTLS_DEFAULTS } from '../../src/spiffe/tls/index.js';
import { trickle } from './attack-helpers.js';
import { type RawClient, rawClient } from './secrets-helpers.js';

const NEXUS_ID = 'spiffe://spike.ist/spike/nexus';
/** FI-07's scale and Nexus's timeouts for it; a close later than timeout + SLACK_MS is a hang (loaded machine included). */
const FI07 = { DRIBBLERS: 60, SILENT: 60, HEADERS_MS: 2_000, HANDSHAKE_MS: 2_000, BYTE_EVERY_MS: 400, SLACK_MS: 8_000 } as const;

let stack: Stack;
let source: WorkloadX509Source;
let pilot: RawClient;

before(async () => {
  stack = await Stack.start({
    backend: 'memory',
    nexusEnv: {
      SPIKE_HTTP_SERVER_READ_HEADER_TIMEOUT: `${FI07.HEADERS_MS}ms`,
      SPIKE_HTTP_SERVER_HANDSHAKE_TIMEOUT: `${FI07.HANDSHAKE_MS}ms`,
      // Hold every silent socket until its timeout (the budgets themselves: attack-connection-flood).
      SPIKE_HTTP_SERVER_MAX_HANDSHAKES: String(4 * (FI07.DRIBBLERS + FI07.SILENT)),
      SPIKE_HTTP_SERVER_MAX_HANDSHAKES_PER_SOURCE: String(4 * (FI07.DRIBBLERS + FI07.SILENT)),
    },
  });
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

test('FI-07: slowloris against spike-nexus: header dribblers get 408 at the headers timeout, silent sockets close at the handshake timeout, a warm client is served throughout, fds return to baseline, the log stays small', { timeout: 120_000 }, async () => {
  const port = Number(new URL(stack.nexusUrl).port);
  const pid = stack.pid('nexus');
  assert.ok(pid !== undefined);
  const openFds = (): number => fs.readdirSync(`/proc/${pid}/fd`).length;
  const logLines = (): { own: number; requests: number } => {
    const all = stack.logs('nexus').split('\n').filter((l) => l !== '');
    const requests = all.filter((l) => l.includes('"msg":"request"')).length;
    return { own: all.length - requests, requests };
  };
  assert.equal((await pilot.post('/v1/store/secrets', { path: 'fi07/warm', values: { k: 'v' } })).status, 200);
  // Settle: the trickles' connections of the tests above are closed before the baseline is read.
  let baseline = openFds();
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const now = openFds();
    if (now === baseline) break;
    baseline = now;
  }
  const linesBefore = logLines();

  let attacking = true;
  const failures: string[] = [];
  let served = 0;
  const warm = (async () => {
    while (attacking) {
      const r = await pilot.post('/v1/store/secrets?action=get', { path: 'fi07/warm' }).catch((e: unknown) => ({ status: -1, body: String(e) }));
      if (r.status === 200) served++;
      else failures.push(`status ${r.status}`);
      await new Promise((r2) => setTimeout(r2, 20));
    }
  })();
  const svid = source.getX509Svid();
  const head = Buffer.from(`GET /v1/store/secrets HTTP/1.1\r\nHost: nexus\r\nX-Slow: ${'a'.repeat(4096)}`);
  const dribbler = (): ReturnType<typeof drip> => drip(tls.connect({
    host: '127.0.0.1', port, minVersion: 'TLSv1.3',
    cert: svidChainPem(svid), key: svidPrivateKeyPem(svid),
    ca: source.bundleSet().allAuthorities().map((c) => c.toString()),
    checkServerIdentity: (_h, cert) => (cert.subjectaltname === `URI:${NEXUS_ID}` ? undefined : new Error('not the expected server')),
  }), 'secureConnect', { head: '', body: head, step: 1, everyMs: FI07.BYTE_EVERY_MS, giveUpMs: FI07.HEADERS_MS + 60_000 });
  // The attack must really reach Nexus's process: its descriptors rise while the sockets are open.
  let peakFds = baseline;
  let attackOver = false;
  const watch = (async () => {
    while (!attackOver) {
      peakFds = Math.max(peakFds, openFds());
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const [dribbled, quiet] = await Promise.all([
    Promise.all(Array.from({ length: FI07.DRIBBLERS }, dribbler)),
    Promise.all(Array.from({ length: FI07.SILENT }, () => silentSocket(port, FI07.HANDSHAKE_MS + 60_000))),
  ]);
  attackOver = true;
  attacking = false;
  await Promise.all([warm, watch]);
  assert.ok(peakFds >= baseline + FI07.DRIBBLERS, `Nexus fds peaked at ${peakFds} (baseline ${baseline}): the attack did not reach it`);

  for (const d of dribbled) {
    assert.match(d.answer, /^HTTP\/1\.1 408 /, d.answer === ''
      ? 'a dribbler got no answer (its TLS handshake did not finish within the handshake timeout?)'
      : `a dribbler's answer: ${JSON.stringify(d.answer.slice(0, 40))}`);
    assert.ok(d.answeredAfterMs >= FI07.HEADERS_MS - 50, `answered before the headers timeout (${Math.round(d.answeredAfterMs)} ms)`);
    assert.ok(d.answeredAfterMs < FI07.HEADERS_MS + FI07.SLACK_MS, `answered after ${Math.round(d.answeredAfterMs)} ms`);
  }
  for (const ms of quiet) {
    assert.ok(ms >= FI07.HANDSHAKE_MS - 50, `a silent socket was closed before the handshake timeout (${Math.round(ms)} ms)`);
    assert.ok(ms < FI07.HANDSHAKE_MS + FI07.SLACK_MS, `a silent socket lived ${Math.round(ms)} ms`);
  }
  // The configured timeout, not the 5 s default, closed them.
  const median = [...quiet].sort((a, b) => a - b)[Math.floor(quiet.length / 2)]!;
  assert.ok(median < MTLS_DEFAULTS.handshakeTimeoutMs, `silent sockets lived ${Math.round(median)} ms (median): SPIKE_HTTP_SERVER_HANDSHAKE_TIMEOUT was not applied`);
  assert.deepEqual(failures, [], 'the warm client was served throughout');
  assert.ok(served >= 5, `warm requests served: ${served}`);
  // Every attack socket is gone: back to the baseline within 15 s.
  const deadline = Date.now() + 15_000;
  while (openFds() > baseline + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(openFds() <= baseline + 2, `Nexus fds: ${openFds()} after, ${baseline} before`);
  // 120 attacking connections, and not a line each: a few lines of Nexus's own, and request
  // lines only for the warm client's requests.
  const after = logLines();
  assert.ok(after.own - linesBefore.own <= 10, `Nexus log lines during the attack: ${after.own - linesBefore.own}`);
  assert.ok(after.requests - linesBefore.requests <= served + failures.length + 1, `request lines: ${after.requests - linesBefore.requests} for ${served} warm requests`);
});
