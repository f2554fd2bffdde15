/**
 * The watching call of h2call.ts (`serverStream`) against raw node:http2 servers on unix
 * sockets, for the framing a long-lived stream meets and a one-shot fetch never does: several
 * messages in one DATA frame, messages dribbled a byte at a time, empty messages, the
 * trailers' status after the messages, an oversize or compressed message ending the call, a
 * stream that stays open (no deadline) until cancelled, and no handler call after `cancel()`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseWorkloadEndpoint } from './endpoint.js';
import { GRPC_STATUS } from './errors.js';
import { serverStream } from './h2call.js';
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
function collect(endpoint: string, maxMessageBytes?: number): Promise<{ messages: string[]; status: number }> {
  return new Promise((resolve) => {
    const messages: string[] = [];
    serverStream(parseWorkloadEndpoint(endpoint), '/SpiffeWorkloadAPI/FetchX509SVID', {
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
