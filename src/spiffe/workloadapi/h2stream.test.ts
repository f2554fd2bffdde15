/**
 * The watching call of h2call.ts (`serverStream`) against raw node:http2 servers on unix
 * sockets, for the framing a long-lived stream meets and a one-shot fetch never does: several
 * messages in one DATA frame, messages dribbled a byte at a time, empty messages, the
 * trailers' status after the messages, an oversize or compressed message ending the call, a
 * stream that stays open (no deadline) until cancelled, and no handler call after `cancel()`;
 * an answer with an HTTP status other than 200 (no message; the trailers' grpc-status, else the
 * mapped HTTP status); and that every received chunk (SVID key bytes) is zeroed once used, when
 * the call is cancelled, or when it is dropped.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { parseWorkloadEndpoint } from './endpoint.js';
import { GRPC_STATUS } from './errors.js';
import { connectOptions, serverStream } from './h2call.js';
import { rawHttp2Server, workloadApiFixture } from '../../../test/helpers/workload-api.js';

const fx = workloadApiFixture();
after(() => fx.close());

const frame = (payload: Buffer, flag = 0): Buffer => {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
};

const rawServer = (answer: Parameters<typeof rawHttp2Server>[1]): Promise<string> => rawHttp2Server(fx, answer);

const okHeaders = { ':status': 200, 'content-type': 'application/grpc' };

/** Runs one call to its end: the messages (as text) and the status. */
function collect(endpoint: string, maxMessageBytes?: number, path = '/SpiffeWorkloadAPI/FetchX509SVID'): Promise<{ messages: string[]; status: number }> {
  return new Promise((resolve) => {
    const messages: string[] = [];
    serverStream(parseWorkloadEndpoint(endpoint), path, {
      onMessage: (m) => messages.push(m.toString('utf8')),
      onEnd: (status) => resolve({ messages, status }),
    }, maxMessageBytes === undefined ? {} : { maxMessageBytes });
  });
}

test('stream framing: several messages (an empty one among them) in one write, then the trailers\' status', async () => {
  const endpoint = await rawServer((s) => {
    s.respond(okHeaders, { waitForTrailers: true });
    s.once('wantTrailers', () => s.sendTrailers({ 'grpc-status': String(GRPC_STATUS.UNAVAILABLE) }));
    s.end(Buffer.concat([frame(Buffer.from('one')), frame(Buffer.alloc(0)), frame(Buffer.from('two')), frame(Buffer.from('three'))]));
  });
  assert.deepEqual(await collect(endpoint), { messages: ['one', '', 'two', 'three'], status: GRPC_STATUS.UNAVAILABLE });
});

test('stream framing: messages dribbled a byte per write (prefixes split too), no deadline sent; a clean end is status OK', async () => {
  let sawTimeout: unknown = 'unset';
  const endpoint = await rawServer((s, h) => {
    sawTimeout = h['grpc-timeout'];
    s.respond(okHeaders, { waitForTrailers: true });
    const all = Buffer.concat([frame(Buffer.from('first')), frame(Buffer.from('second')), frame(Buffer.alloc(0))]);
    let i = 0;
    const drip = (): void => {
      if (i < all.length) {
        s.write(all.subarray(i, ++i));
        setTimeout(drip, 1);
        return;
      }
      s.once('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.end();
    };
    setTimeout(drip, 1);
  });
  assert.deepEqual(await collect(endpoint), { messages: ['first', 'second', ''], status: GRPC_STATUS.OK });
  assert.equal(sawTimeout, undefined, 'a watch sends no deadline');
});

test('stream framing: a message over the limit ends the call with RESOURCE_EXHAUSTED after the ones before it; a compressed one with INTERNAL', async () => {
  const big = await rawServer((s) => {
    s.respond(okHeaders);
    s.write(Buffer.concat([frame(Buffer.from('fits')), frame(Buffer.alloc(64, 1))]));
  });
  assert.deepEqual(await collect(big, 16), { messages: ['fits'], status: GRPC_STATUS.RESOURCE_EXHAUSTED });
  const zipped = await rawServer((s) => {
    s.respond(okHeaders);
    s.write(frame(Buffer.from('x'), 1));
  });
  assert.deepEqual(await collect(zipped), { messages: [], status: GRPC_STATUS.INTERNAL });
});

test('stream: stays open between messages until cancelled; nothing is delivered after cancel(), and the server sees the stream go', async () => {
  let serverStreamClosed!: () => void;
  const closed = new Promise<void>((r) => { serverStreamClosed = r; });
  let push!: (text: string) => void;
  const endpoint = await rawServer((s) => {
    s.respond(okHeaders);
    push = (text) => s.write(frame(Buffer.from(text)));
    s.on('close', () => serverStreamClosed());
    push('first');
  });
  const got: string[] = [];
  let ended = false;
  let second!: () => void;
  const secondIn = new Promise<void>((r) => { second = r; });
  let firstIn!: () => void;
  const firstArrived = new Promise<void>((r) => { firstIn = r; });
  const call = serverStream(parseWorkloadEndpoint(endpoint), '/SpiffeWorkloadAPI/FetchX509SVID', {
    onMessage: (m) => {
      got.push(m.toString('utf8'));
      if (got.length === 1) firstIn();
      if (got.length === 2) second();
    },
    onEnd: () => { ended = true; },
  });
  await firstArrived;
  await new Promise((r) => setTimeout(r, 300)); // an idle stream is not an ended one
  assert.equal(ended, false);
  push('second');
  await secondIn;
  call.cancel();
  call.cancel();
  await closed;
  assert.deepEqual(got, ['first', 'second']);
  assert.equal(ended, false, 'onEnd is not called after cancel()');
});

/**
 * Records every chunk that client HTTP/2 streams sent to `path` emit as 'data' (after the
 * listeners ran) while `body` runs: the bytes of SVID keys arrive in these buffers, and
 * serverStream must zero them. Each test uses a path of its own, so a stream another test in
 * the same process left open is never recorded.
 */
async function watchingChunks<T>(endpoint: string, path: string, body: (seen: Buffer[]) => Promise<T>): Promise<T> {
  // The client stream class is not exported: take its prototype from a throwaway request.
  const probe = http2.connect('http://localhost', { createConnection: () => net.connect(connectOptions(parseWorkloadEndpoint(endpoint))) });
  probe.on('error', () => undefined);
  const probeReq = probe.request({ ':path': '/probe' });
  probeReq.on('error', () => undefined);
  const proto = Object.getPrototypeOf(probeReq) as { emit: (this: unknown, ev: string | symbol, ...a: unknown[]) => boolean };
  probeReq.close();
  probe.destroy();
  const seen: Buffer[] = [];
  const own = Object.getOwnPropertyDescriptor(proto, 'emit');
  const emit = proto.emit;
  proto.emit = function (this: unknown, ev: string | symbol, ...a: unknown[]): boolean {
    const r = emit.call(this, ev, ...a);
    const sent = (this as { sentHeaders?: http2.OutgoingHttpHeaders }).sentHeaders;
    if (ev === 'data' && Buffer.isBuffer(a[0]) && sent?.[':path'] === path) seen.push(a[0]);
    return r;
  };
  try {
    return await body(seen);
  } finally {
    if (own !== undefined) Object.defineProperty(proto, 'emit', own);
    else delete (proto as { emit?: unknown }).emit;
  }
}

const allZero = (b: Buffer): boolean => b.every((x) => x === 0);

test('key bytes: every chunk received is zeroed once its messages are cut out, a message split over writes included', async () => {
  const a = frame(Buffer.alloc(3000, 0xab));
  const b = frame(Buffer.alloc(50, 0xcd));
  const endpoint = await rawServer((s) => {
    s.respond(okHeaders, { waitForTrailers: true });
    s.write(a.subarray(0, 7));
    setTimeout(() => s.write(a.subarray(7, 2000)), 5);
    setTimeout(() => {
      s.once('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.end(Buffer.concat([a.subarray(2000), b]));
    }, 10);
  });
  const path = '/SpiffeWorkloadAPI/FetchX509SVID?zeroed-when-cut';
  await watchingChunks(endpoint, path, async (seen) => {
    const got: string[] = [];
    const status = await new Promise<number>((resolve) => {
      serverStream(parseWorkloadEndpoint(endpoint), path, {
        onMessage: (m) => {
          got.push(`${m.length}:${m[0]!.toString(16)}:${m.every((x) => x === m[0])}`);
          m.fill(0); // the consumer's part
        },
        onEnd: resolve,
      });
    });
    assert.equal(status, GRPC_STATUS.OK);
    assert.deepEqual(got, ['3000:ab:true', '50:cd:true']);
    const withBytes = seen.filter((c) => c.length > 0);
    assert.ok(withBytes.length >= 2, `chunks seen: ${withBytes.length}`);
    assert.deepEqual(withBytes.filter((c) => !allZero(c)).map((c) => c.length), [], 'chunks left holding received bytes');
  });
});

test('key bytes: a message only half received when the call is cancelled is zeroed too', async () => {
  const a = frame(Buffer.alloc(3000, 0xab));
  const endpoint = await rawServer((s) => {
    s.respond(okHeaders);
    s.write(a.subarray(0, 1000)); // and the rest never comes
  });
  const path = '/SpiffeWorkloadAPI/FetchX509SVID?zeroed-when-cancelled';
  await watchingChunks(endpoint, path, async (seen) => {
    const call = serverStream(parseWorkloadEndpoint(endpoint), path, {
      onMessage: () => assert.fail('no whole message was sent'),
      onEnd: () => undefined,
    });
    for (const end = Date.now() + 20_000; seen.filter((c) => c.length > 0).length === 0;) {
      if (Date.now() > end) assert.fail('no data arrived');
      await new Promise((r) => setTimeout(r, 10));
    }
    const withBytes = seen.filter((c) => c.length > 0);
    assert.ok(withBytes.some((c) => !allZero(c)), 'a half message is kept until it completes or the call ends');
    call.cancel();
    assert.deepEqual(withBytes.filter((c) => !allZero(c)).map((c) => c.length), [], 'chunks left holding received bytes after cancel()');
  });
});

test('an HTTP status other than 200: no message is delivered; the trailers\' grpc-status wins, else the HTTP status mapped when the stream ends', async () => {
  const withTrailers = await rawServer((s) => {
    s.respond({ ':status': 503 }, { waitForTrailers: true });
    s.once('wantTrailers', () => s.sendTrailers({ 'grpc-status': String(GRPC_STATUS.PERMISSION_DENIED) }));
    s.end(frame(Buffer.from('not for you')));
  });
  const path = '/SpiffeWorkloadAPI/FetchX509SVID?non-200';
  await watchingChunks(withTrailers, path, async (seen) => {
    assert.deepEqual(await collect(withTrailers, undefined, path), { messages: [], status: GRPC_STATUS.PERMISSION_DENIED });
    const withBytes = seen.filter((c) => c.length > 0);
    assert.ok(withBytes.length >= 1, 'the answer\'s body arrived');
    assert.deepEqual(withBytes.filter((c) => !allZero(c)).map((c) => c.length), [], 'a dropped body is zeroed too');
  });
  const bare = await rawServer((s) => {
    s.respond({ ':status': 404, 'content-type': 'text/html' });
    s.end('<html>not here</html>');
  });
  assert.deepEqual(await collect(bare), { messages: [], status: GRPC_STATUS.UNIMPLEMENTED });
  const headersOnly = await rawServer((s) => s.respond({ ':status': 503 }, { endStream: true }));
  assert.deepEqual(await collect(headersOnly), { messages: [], status: GRPC_STATUS.UNAVAILABLE });
});
