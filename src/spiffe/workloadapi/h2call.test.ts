/**
 * The one-shot fetch over node:http2 (h2call.ts + messages.ts) against real servers on unix
 * sockets: scripted grpc-js Workload API servers (status codes, bad and oversize answers, the
 * security header) and raw node:http2 servers for answers grpc-js would never send
 * (compressed flag, wrong content type, HTTP errors without a gRPC status). `whileWaiting`
 * runs once while the agent has not answered yet, and never changes a call's outcome.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { fetchX509BundlesOnce, fetchX509Context } from './client.js';
import { WorkloadApiError } from './errors.js';
import { fetchX509SourceOnce } from './x509-once.js';
import { NEXUS, rawHttp2Server, workloadApiFixture } from '../../../test/helpers/workload-api.js';

const fx = workloadApiFixture();
after(() => fx.close());

const isErr = (code: string, grpcCode?: number) => (e: unknown): boolean => {
  assert.ok(e instanceof WorkloadApiError, String(e));
  assert.equal(e.code, code, e.message);
  if (grpcCode !== undefined) assert.equal(e.grpcCode, grpcCode);
  return true;
};

const rawServer = (answer: Parameters<typeof rawHttp2Server>[1]): Promise<string> => rawHttp2Server(fx, answer);

test('a good answer: SVID and bundle parsed; the request carried the security header and one empty message', async () => {
  const resp = await fx.goodResponse();
  let header: unknown;
  const srv = await fx.scripted((_n, call) => {
    header = call.metadata.get('workload.spiffe.io');
    call.write(resp);
  });
  const ctx = await fetchX509Context({ endpoint: srv.endpoint, timeoutMs: 30_000 });
  assert.ok(ctx.svids[0]!.id.equals(NEXUS));
  assert.ok(ctx.bundles.has(NEXUS.trustDomain));
  assert.deepEqual(header, ['true']);
  assert.equal(srv.calls(), 1);
});

test('InvalidArgument and Unimplemented are fatal; PermissionDenied is retried by the fetch-once source', async () => {
  const bad = await fx.scripted((_n, call) => call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'no header' }));
  await assert.rejects(fetchX509Context({ endpoint: bad.endpoint, timeoutMs: 30_000 }), isErr('workload_api_rejected', grpc.status.INVALID_ARGUMENT));
  const unimpl = await fx.scripted((_n, call) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }));
  await assert.rejects(fetchX509SourceOnce({ endpoint: unimpl.endpoint, timeoutMs: 30_000 }), isErr('workload_api_unimplemented'));
  assert.equal(unimpl.calls(), 1);
  const resp = await fx.goodResponse();
  const later = await fx.scripted((n, call) => (n === 0 ? call.emit('error', { code: grpc.status.PERMISSION_DENIED }) : call.write(resp)));
  const src = await fetchX509SourceOnce({ endpoint: later.endpoint, timeoutMs: 30_000, backoffInitialMs: 10 });
  assert.ok(src.getX509Svid().id.equals(NEXUS));
  assert.equal(later.calls(), 2);
});

test('a stream that ends without a message is unavailable (no status), not a hang', async () => {
  const srv = await fx.scripted((_n, call) => call.end());
  await assert.rejects(fetchX509Context({ endpoint: srv.endpoint, timeoutMs: 30_000 }), (e: unknown) => isErr('workload_api_unavailable')(e) && /no answer/.test((e as Error).message));
});

test('an agent that never answers fails at the deadline with DEADLINE_EXCEEDED', async () => {
  const srv = await fx.scripted(() => { /* never answers */ });
  const t0 = Date.now();
  await assert.rejects(fetchX509Context({ endpoint: srv.endpoint, timeoutMs: 300 }), isErr('workload_api_unavailable', grpc.status.DEADLINE_EXCEEDED));
  assert.ok(Date.now() - t0 >= 250);
});

test('a response that breaks an SVID rule is workload_api_bad_response', async () => {
  const resp = await fx.goodResponse();
  resp.svids[0]!.spiffe_id = 'spiffe://spike.ist/someone/else';
  const srv = await fx.scripted((_n, call) => call.write(resp));
  await assert.rejects(fetchX509Context({ endpoint: srv.endpoint, timeoutMs: 30_000 }), isErr('workload_api_bad_response'));
});

test('a message over 4 MiB is refused (RESOURCE_EXHAUSTED) before it is buffered', async () => {
  const resp = await fx.goodResponse();
  resp.crl = [Buffer.alloc(4 * 1024 * 1024 + 1)];
  const srv = await fx.scripted((_n, call) => call.write(resp));
  await assert.rejects(fetchX509Context({ endpoint: srv.endpoint, timeoutMs: 30_000 }), isErr('workload_api_unavailable', grpc.status.RESOURCE_EXHAUSTED));
});

test('FetchX509Bundles goes through the same call (Unimplemented from the scripted server)', async () => {
  const srv = await fx.scripted(() => { /* unused */ });
  await assert.rejects(fetchX509BundlesOnce({ endpoint: srv.endpoint, timeoutMs: 30_000 }), isErr('workload_api_unimplemented'));
});

test('raw HTTP/2 answers: compressed flag, wrong content type, HTTP 503 and garbage protobuf are errors', async () => {
  const grpcHeaders = { ':status': 200, 'content-type': 'application/grpc' };
  const compressed = await rawServer((s) => {
    s.respond(grpcHeaders);
    s.end(Buffer.from([1, 0, 0, 0, 1, 0]));
  });
  await assert.rejects(fetchX509Context({ endpoint: compressed, timeoutMs: 30_000 }), isErr('workload_api_unavailable', grpc.status.INTERNAL));
  const html = await rawServer((s) => {
    s.respond({ ':status': 200, 'content-type': 'text/html' });
    s.end('<html>');
  });
  await assert.rejects(fetchX509Context({ endpoint: html, timeoutMs: 30_000 }), isErr('workload_api_unavailable', grpc.status.UNKNOWN));
  const busy = await rawServer((s) => {
    s.respond({ ':status': 503 });
    s.end();
  });
  await assert.rejects(fetchX509Context({ endpoint: busy, timeoutMs: 30_000 }), isErr('workload_api_unavailable', grpc.status.UNAVAILABLE));
  const garbage = await rawServer((s) => {
    s.respond(grpcHeaders);
    s.end(Buffer.from([0, 0, 0, 0, 2, 0x0b, 0x00])); // wire type 3 (group)
  });
  await assert.rejects(fetchX509Context({ endpoint: garbage, timeoutMs: 30_000 }), isErr('workload_api_bad_response'));
});

test('the request follows gRPC over HTTP/2: POST, path, content type, te, grpc-timeout, header, empty message', async () => {
  let seen: http2.IncomingHttpHeaders | undefined;
  let body = Buffer.alloc(0);
  const ep = await rawServer((s, h) => {
    seen = h;
    s.on('data', (c: Buffer) => (body = Buffer.concat([body, c])));
    s.on('end', () => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '7' }, { endStream: true });
    });
  });
  await assert.rejects(fetchX509Context({ endpoint: ep, timeoutMs: 5_000 }), isErr('workload_api_unavailable', grpc.status.PERMISSION_DENIED));
  assert.equal(seen?.[':method'], 'POST');
  assert.equal(seen?.[':path'], '/SpiffeWorkloadAPI/FetchX509SVID');
  assert.equal(seen?.['content-type'], 'application/grpc');
  assert.equal(seen?.['te'], 'trailers');
  assert.equal(seen?.['grpc-timeout'], '5000m');
  assert.equal(seen?.['workload.spiffe.io'], 'true');
  assert.deepEqual([...body], [0, 0, 0, 0, 0]);
});

test('whileWaiting runs once while the agent has not answered; its failure changes nothing', async () => {
  const resp = await fx.goodResponse();
  let release: () => void = () => undefined;
  const ran = new Promise<void>((r) => (release = r));
  const srv = await fx.scripted((_n, call) => {
    // The agent answers only once the caller's work has run: that work did not wait for it.
    void ran.then(() => call.write(resp));
  });
  let calls = 0;
  const ctx = await fetchX509Context({ endpoint: srv.endpoint, timeoutMs: 30_000, whileWaiting: () => { calls++; release(); } });
  assert.ok(ctx.svids[0]!.id.equals(NEXUS));
  assert.equal(calls, 1);
  const quick = await fx.scripted((_n, call) => call.write(resp));
  const src = await fetchX509SourceOnce({ endpoint: quick.endpoint, timeoutMs: 30_000, whileWaiting: () => { throw new Error('boom'); } });
  assert.ok(src.getX509Svid().id.equals(NEXUS));
});

test('whileWaiting does not run when nobody listens (the call fails first)', async () => {
  let calls = 0;
  await assert.rejects(
    fetchX509Context({ endpoint: `unix://${fx.sockPath()}`, timeoutMs: 30_000, whileWaiting: () => calls++ }),
    isErr('workload_api_no_agent'),
  );
  await new Promise((r) => setImmediate(r));
  assert.equal(calls, 0);
});

test('a file that is not a socket at the endpoint is "no agent" at once, not retried until the deadline', async () => {
  const file = fx.sockPath();
  fs.writeFileSync(file, '');
  const t0 = Date.now();
  await assert.rejects(fetchX509SourceOnce({ endpoint: `unix://${file}`, timeoutMs: 30_000 }), isErr('workload_api_no_agent'));
  assert.ok(Date.now() - t0 < 20_000, 'well before the 30 s deadline');
});

test('a listener that accepts and closes: unavailable at the deadline, and the message names the whole wait, not the last attempt\'s', async () => {
  const sock = fx.sockPath();
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    // Two attempts: the second starts 150-300 ms in, and the next pause would pass the 600 ms
    // deadline, so the fetch gives up then. The last attempt's own budget (what the message
    // used to say) is then longer than the whole wait; the message must not exceed the wait.
    const t0 = Date.now();
    await assert.rejects(fetchX509SourceOnce({ endpoint: `unix://${sock}`, timeoutMs: 600, backoffInitialMs: 300 }), (e: unknown) => {
      const waited = Date.now() - t0;
      isErr('workload_api_unavailable')(e);
      const ms = Number(/within (\d+) ms/.exec((e as Error).message)?.[1]);
      assert.ok(ms <= waited && ms >= waited / 2, `the message says ${ms} ms after ${waited} ms`);
      return true;
    });
  } finally {
    server.close();
  }
});
