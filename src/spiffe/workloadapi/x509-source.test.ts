/**
 * The Workload API source and one-shot fetches against real gRPC servers on unix sockets in
 * this process: the dev agent's server, and scripted servers that answer with chosen status
 * codes or bad responses.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../../lib/log.js';
import { WorkloadApiServer } from '../../agent/server.js';
import { verifyX509Svid } from '../verify.js';
import { fetchX509BundlesOnce, fetchX509SvidOnce } from './client.js';
import { WorkloadApiError } from './errors.js';
import type { X509SvidResponseMessage } from './proto.js';
import { WorkloadX509Source } from './x509-source.js';
import { NEXUS, TD, workloadApiFixture } from '../../../test/helpers/workload-api.js';

const silent = createLogger({ component: 'test', level: 'silent' });
const fx = workloadApiFixture();
after(() => fx.close());
const { root, servers, ca, goodResponse, sockPath, scripted } = fx;

test('source against the dev agent server: SVID verifies, bundles fetched, one-shot helpers work', async () => {
  const c = await ca();
  const socketDir = path.join(root, 'agent-sockets');
  const srv = await WorkloadApiServer.start({ ca: c, identities: [{ name: 'nexus', spiffeId: NEXUS }], socketDir, svidTtlMs: 60_000, logger: silent });
  servers.push(srv);
  const endpoint = `unix://${srv.sockets()['nexus']}`;
  const src = await WorkloadX509Source.open({ endpoint, timeoutMs: 30_000, logger: silent });
  try {
    const svid = src.getX509Svid();
    assert.ok(svid.id.equals(NEXUS));
    assert.ok(verifyX509Svid(svid.certificates.map((x) => x.raw), src).equals(NEXUS));
    assert.ok(src.getX509BundleForTrustDomain(TD));
    const once = await fetchX509SvidOnce({ endpoint, timeoutMs: 30_000 });
    assert.ok(once.id.equals(NEXUS));
    const bundles = await fetchX509BundlesOnce({ endpoint, timeoutMs: 30_000 });
    assert.ok(bundles.get(TD)!.toDer().equals(c.bundleDer()));
  } finally {
    src.close();
  }
  assert.throws(() => src.getX509Svid(), /closed/);
});

test('Unavailable and PermissionDenied are retried until an SVID arrives', async () => {
  const resp = await goodResponse();
  const srv = await scripted((n, call) => {
    if (n === 0) call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'not ready' });
    else if (n === 1) call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: 'no identity' });
    else if (n === 2) call.end(); // stream ended without a message
    else call.write(resp);
  });
  const src = await WorkloadX509Source.open({ endpoint: srv.endpoint, timeoutMs: 10_000, logger: silent, backoffInitialMs: 20 });
  try {
    assert.equal(srv.calls(), 4);
    assert.ok(src.getX509Svid().id.equals(NEXUS));
  } finally {
    src.close();
  }
});

test('InvalidArgument is not retried: open rejects at once with workload_api_rejected', async () => {
  const srv = await scripted((_n, call) => call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'no header' }));
  const t0 = Date.now();
  await assert.rejects(WorkloadX509Source.open({ endpoint: srv.endpoint, timeoutMs: 60_000, logger: silent, backoffInitialMs: 10 }),
    (e: unknown) => e instanceof WorkloadApiError && e.code === 'workload_api_rejected' && e.grpcCode === grpc.status.INVALID_ARGUMENT && e.message.includes(srv.sock));
  // "At once" = well before the 60 s open timeout that retrying would run into (generous for a loaded machine).
  assert.ok(Date.now() - t0 < 30_000);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(srv.calls(), 1, 'no retry after InvalidArgument');
});

test('Unimplemented is not retried: open rejects with workload_api_unimplemented', async () => {
  const srv = await scripted((_n, call) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }));
  await assert.rejects(WorkloadX509Source.open({ endpoint: srv.endpoint, timeoutMs: 10_000, logger: silent, backoffInitialMs: 10 }),
    (e: unknown) => e instanceof WorkloadApiError && e.code === 'workload_api_unimplemented');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(srv.calls(), 1);
});

test('a malformed response is reported and skipped, logged at warn once however many come; the next good one is used', async () => {
  const good = await goodResponse();
  const bad = await goodResponse();
  bad.svids[0]!.spiffe_id = 'spiffe://spike.ist/someone/else';
  const srv = await scripted((_n, call) => {
    for (let i = 0; i < 50; i++) call.write(bad);
    setTimeout(() => call.write(good), 100);
  });
  const lines: string[] = [];
  const logger = createLogger({ component: 'test', level: 'warn', destination: new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }) });
  const src = await WorkloadX509Source.open({ endpoint: srv.endpoint, timeoutMs: 30_000, logger });
  try {
    assert.ok(src.getX509Svid().id.equals(NEXUS));
    // The stream is ordered: the good response came after all 50 bad ones.
    assert.equal(lines.filter((l) => l.includes('workload_api_bad_response')).length, 1, 'the bad responses were logged at warn once');
  } finally {
    src.close();
  }
});

test('updates: a new response emits update; an identical one does not; errors reach an error listener', async () => {
  const first = await goodResponse();
  const second = await goodResponse();
  let stream: grpc.ServerWritableStream<unknown, X509SvidResponseMessage> | undefined;
  const srv = await scripted((_n, call) => {
    stream = call;
    call.write(first);
  });
  const src = await WorkloadX509Source.open({ endpoint: srv.endpoint, timeoutMs: 30_000, logger: silent });
  try {
    const serial1 = src.getX509Svid().certificates[0]!.serialNumber;
    const updates: string[] = [];
    const errors: WorkloadApiError[] = [];
    src.on('update', () => updates.push(src.getX509Svid().certificates[0]!.serialNumber));
    src.on('error', (e: WorkloadApiError) => errors.push(e));
    // The server's copy of `first` is intact (the client zeroes only its own decoded bytes).
    stream!.write(first); // identical → no update
    stream!.write({ ...first, svids: [{ ...first.svids[0]!, x509_svid_key: Buffer.alloc(0) }] }); // bad: empty key → error event
    stream!.write(second);
    // The stream is ordered: once `second` (the last write) produced its update, the identical
    // and the bad message before it were processed too. Wait for that, not for a fixed 300 ms.
    const deadline = Date.now() + 30_000;
    while ((updates.length === 0 || errors.length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(updates.length, 1);
    assert.notEqual(updates[0], serial1);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, 'workload_api_bad_response');
  } finally {
    src.close();
  }
});

test('the source reconnects after the server goes away and comes back', async () => {
  const sock = sockPath();
  const r1 = await goodResponse();
  const srv1 = await scripted((_n, call) => call.write(r1), sock);
  const src = await WorkloadX509Source.open({ endpoint: `unix://${sock}`, timeoutMs: 30_000, logger: silent, backoffInitialMs: 20, backoffMaxMs: 200 });
  try {
    const s1 = src.getX509Svid().certificates[0]!.serialNumber;
    srv1.close();
    await new Promise((r) => setTimeout(r, 300));
    const r2 = await goodResponse();
    const updated = new Promise<void>((res) => src.once('update', () => res()));
    await scripted((_n, call) => call.write(r2), sock);
    await updated;
    assert.notEqual(src.getX509Svid().certificates[0]!.serialNumber, s1);
  } finally {
    src.close();
  }
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a silent stream is ended and retried: no first message within stallTimeoutMs, then no rotated SVID by 3/4 of the remaining lifetime', { timeout: 30_000 }, async () => {
  // Call 0 never answers (a hung agent); call 1 sends an SVID with 2 s left and then goes
  // silent; call 2 sends a fresh one (60 s). The agent never ends a stream itself.
  const short = await goodResponse(NEXUS, 2_000);
  const fresh = await goodResponse();
  const srv = await scripted((n, call) => {
    if (n === 1) call.write(short);
    if (n === 2) call.write(fresh);
  });
  const src = await WorkloadX509Source.open({ endpoint: srv.endpoint, timeoutMs: 30_000, logger: silent, backoffInitialMs: 20, backoffMaxMs: 100, stallTimeoutMs: 400 });
  try {
    assert.equal(srv.calls(), 2, 'the silent first call was given up for a second');
    const first = src.getX509Svid().certificates[0]!.serialNumber;
    await new Promise<void>((res) => src.once('update', () => res()));
    assert.equal(srv.calls(), 3, 'the rotated SVID came on a new call');
    assert.notEqual(src.getX509Svid().certificates[0]!.serialNumber, first);
    // The fresh SVID has 60 s left: its stream is not given up after the 400 ms of a first message.
    await sleep(1_000);
    assert.equal(srv.calls(), 3, 'a stream that brought a fresh SVID is kept');
  } finally {
    src.close();
  }
});

test('a stuck agent that keeps serving the same expiring SVID is asked less and less often; nothing after close()', { timeout: 30_000 }, async () => {
  const stale = await goodResponse(NEXUS, 1_000);
  const srv = await scripted((_n, call) => call.write(stale));
  const src = await WorkloadX509Source.open({ endpoint: srv.endpoint, timeoutMs: 30_000, logger: silent, backoffInitialMs: 20, backoffMaxMs: 100, stallTimeoutMs: 400 });
  try {
    // Waits of 750 ms (3/4 of 1 s), then 800, 1,600, 3,200 ms as nothing changes: at most 4
    // calls in 4 s (a fixed 400 ms floor would make about 10; a slower machine makes fewer).
    await sleep(4_000);
    assert.ok(srv.calls() >= 2 && srv.calls() <= 4, `calls in 4 s: ${srv.calls()}`);
  } finally {
    src.close();
  }
  const after = srv.calls();
  await sleep(1_500);
  assert.equal(srv.calls(), after, 'no call after close()');
});

test('an agent that answers and then drops every stream at once is asked less and less often, with one warning; a stream that stayed up starts the backoff over', { timeout: 90_000 }, async () => {
  const good = await goodResponse();
  let fresh: X509SvidResponseMessage | undefined;
  const srv = await scripted((_n, call) => {
    if (fresh !== undefined) {
      call.write(fresh); // stays open
      return;
    }
    call.write(good);
    call.end();
  });
  const lines: string[] = [];
  const logger = createLogger({ component: 'test', level: 'warn', destination: new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }) });
  const ended = (): number => lines.filter((l) => l.includes('Workload API stream ended; reconnecting')).length;
  const until = async (ok: () => boolean, what: string): Promise<void> => {
    for (const end = Date.now() + 20_000; !ok();) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await sleep(20);
    }
  };
  // The backoff starts over only after a call that delivered has lasted the longest delay
  // (3 s here), which a stream dropped at once never does. Delays of at least 10, 20, 40, 80,
  // 160, 320, 640, 1,280 ms (equal jitter at most halves them): at most 9 calls in 2 s; resetting
  // at every response made one every ~10-20 ms (96 in 2 s on that code).
  const src = await WorkloadX509Source.open({ endpoint: srv.endpoint, timeoutMs: 30_000, logger, backoffInitialMs: 20, backoffMaxMs: 3_000 });
  try {
    await sleep(2_000);
    assert.ok(srv.calls() >= 2 && srv.calls() <= 9, `calls in 2 s: ${srv.calls()}`);
    assert.equal(ended(), 1, 'one warning for the flapping, the rest at debug');
    // Now a stream brings a new SVID and stays up past the 3 s; when it ends, the end is a new
    // warning (the backoff started over).
    fresh = await goodResponse();
    const updated = new Promise<void>((res) => src.once('update', () => res()));
    await updated;
    await sleep(3_500);
    srv.close();
    await until(() => ended() >= 2, 'the warning of the stable stream\'s end');
    assert.equal(ended(), 2);
  } finally {
    src.close();
  }
});

test('backoff bounds are checked: zero, negative, not a number, initial above max', async () => {
  for (const bad of [{ backoffInitialMs: 0 }, { backoffMaxMs: -1 }, { backoffMaxMs: Number.NaN }, { backoffInitialMs: 200, backoffMaxMs: 100 }]) {
    await assert.rejects(WorkloadX509Source.open({ endpoint: 'unix:///nonexistent/agent.sock', timeoutMs: 10, logger: silent, ...bad }), RangeError, JSON.stringify(bad));
  }
});

test('open against a socket where nothing listens rejects with workload_api_unavailable naming the socket', async () => {
  const sock = path.join(root, 'nobody-here.sock');
  const t0 = Date.now();
  await assert.rejects(WorkloadX509Source.open({ endpoint: `unix://${sock}`, timeoutMs: 600, logger: silent }), (e: unknown) => {
    assert.ok(e instanceof WorkloadApiError);
    assert.equal(e.code, 'workload_api_unavailable');
    assert.ok(e.message.includes(`unix://${sock}`), e.message);
    return true;
  });
  const took = Date.now() - t0;
  // Not before its timeout; the upper bound only catches a hang (generous for a loaded machine).
  assert.ok(took >= 550 && took < 30_000, `took ${took} ms`);
  // The one-shot fetch does not wait: nothing listens there, so it says so at once.
  await assert.rejects(fetchX509SvidOnce({ endpoint: `unix://${sock}`, timeoutMs: 60_000 }), (e: unknown) => {
    assert.ok(e instanceof WorkloadApiError);
    assert.equal(e.code, 'workload_api_no_agent');
    assert.equal(e.message, `no Workload API at unix://${sock}: is the agent running?`);
    return true;
  });
});

test('beforeDial runs before every dial: "nothing there yet" waits without dialling; a refusal ends open for good', async () => {
  const resp = await goodResponse();
  const srv = await scripted((_n, call) => call.write(resp));
  let asked = 0;
  const src = await WorkloadX509Source.open({
    endpoint: srv.endpoint, timeoutMs: 10_000, logger: silent, backoffInitialMs: 10, backoffMaxMs: 20,
    beforeDial: () => ++asked > 2, // the socket "appears" at the third look
  });
  try {
    assert.equal(asked, 3);
    assert.equal(srv.calls(), 1, 'dialled only once the check said so');
  } finally {
    src.close();
  }
  const refused = new WorkloadApiError('workload_api_untrusted_default', 'refusing the default Workload API socket');
  await assert.rejects(
    WorkloadX509Source.open({ endpoint: srv.endpoint, timeoutMs: 10_000, logger: silent, beforeDial: () => { throw refused; } }),
    (e: unknown) => e === refused,
  );
  assert.equal(srv.calls(), 1, 'a refused endpoint is never dialled');
});
