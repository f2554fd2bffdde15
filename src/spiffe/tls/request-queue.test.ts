/**
 * Pipelined HTTP/1.1 requests are handled one at a time, in order (request-queue.ts): on a real
 * mTLS server, a pipelined request starts only once the answer before it has closed, and a
 * request behind an answer that closes the connection is never run; the queue's own bound
 * pauses and resumes the socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import tls from 'node:tls';
import { ConnectionRequests, HEAD_LIMITS, MAX_WAITING } from './request-queue.js';
import { certPem, createMtlsPki, pemKey, sleep, startServer } from '../../../test/helpers/mtls-harness.js';

const post = (path: string, body: string, extra = ''): string =>
  `POST ${path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

/** A verified TLS connection of the harness's client SVID to `port`. */
function connectClient(pki: Awaited<ReturnType<typeof createMtlsPki>>, port: number): tls.TLSSocket {
  const client = pki.clientSvid;
  return tls.connect({
    host: '127.0.0.1', port, ca: [certPem(pki.ca1)], checkServerIdentity: () => undefined,
    cert: client.certificates.map((c) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(c.raw).toString('base64')}\n-----END CERTIFICATE-----\n`).join(''),
    key: pemKey(client.privateKey),
  });
}

async function pipelined(request: string, handle: (req: IncomingMessage, res: ServerResponse, events: string[]) => Promise<void>): Promise<{ events: string[]; answers: string[] }> {
  const pki = await createMtlsPki();
  const events: string[] = [];
  const h = await startServer(pki.serverSvid, pki.both, {
    handler: (req, res) => {
      events.push(`start ${req.url}`);
      return handle(req, res, events);
    },
  });
  try {
    const text = await new Promise<string>((resolve, reject) => {
      const sock = connectClient(pki, h.server.port);
      const data: Buffer[] = [];
      sock.on('secureConnect', () => sock.write(request)); // every request in one write: pipelined
      sock.on('data', (c: Buffer) => data.push(c));
      sock.on('error', reject);
      sock.on('close', () => resolve(Buffer.concat(data).toString('latin1')));
    });
    const answers = [...text.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n(?:[^\r]+\r\n)*\r\n([a-z0-9{}"_:]*)/g)].map((m) => `${m[1]} ${m[2]}`);
    return { events, answers };
  } finally {
    await h.server.close();
  }
}

test('pipelining: a request starts only once the answer before it has closed, so writes and reads take effect in the order sent', async () => {
  const { events, answers } = await pipelined(
    post('/slow', '{"a":1}') + post('/fast', '{"b":2}') + post('/last', '{}', 'Connection: close\r\n'),
    async (req, res, ev) => {
      req.resume();
      if (req.url === '/slow') await sleep(80); // a slow write: what follows must wait for it
      ev.push(`end ${req.url}`);
      const body = (req.url ?? '').slice(1);
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    },
  );
  assert.deepEqual(events, ['start /slow', 'end /slow', 'start /fast', 'end /fast', 'start /last', 'end /last']);
  assert.deepEqual(answers, ['200 slow', '200 fast', '200 last']);
});

test('pipelining: a request behind an answer that closes the connection is never run', async () => {
  const { events, answers } = await pipelined(
    post('/refused', '{}') + post('/write', '{"k":"v"}', 'Connection: close\r\n'),
    async (req, res) => {
      req.resume();
      res.writeHead(400, { 'content-length': 7, connection: 'close' });
      res.end('refused');
    },
  );
  assert.deepEqual(events, ['start /refused'], 'the pipelined write was not run');
  assert.deepEqual(answers, ['400 refused']);
});

test('pipelining: up to MAX_WAITING requests behind the one being handled all run and are answered in order', async () => {
  const n = MAX_WAITING + 1;
  let request = '';
  for (let i = 0; i < n; i++) request += post(`/r${i}`, '{}', i === n - 1 ? 'Connection: close\r\n' : '');
  const { events, answers } = await pipelined(request, async (req, res, ev) => {
    req.resume();
    if (req.url === '/r0') await sleep(100); // the rest arrive and wait
    ev.push(`end ${req.url}`);
    const body = (req.url ?? '').slice(1);
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
  assert.equal(events.filter((e) => e.startsWith('start')).length, n);
  assert.deepEqual(answers, Array.from({ length: n }, (_, i) => `200 r${i}`));
});

test('DoS: a connection that gets more than MAX_WAITING requests ahead of its answers is closed; none of the waiting ones runs', async () => {
  let request = '';
  for (let i = 0; i < MAX_WAITING + 8; i++) request += post(`/r${i}`, '{}');
  const { events, answers } = await pipelined(request, async (req, res) => {
    req.resume();
    // The first answer waits until the server has closed the connection (or 10 s: then it is
    // answered, the waiting requests run, and the assertions below fail).
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 10_000);
      res.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
    if (!res.destroyed) res.end('late');
  });
  assert.deepEqual(events, ['start /r0'], 'only the request being handled ran');
  assert.deepEqual(answers, [], 'the connection was closed without answers');
});

test('ConnectionRequests: an overflow destroys the socket once and tells the server; later requests are refused', () => {
  const calls: string[] = [];
  const socket = { destroyed: false, writableEnded: false, destroy: () => calls.push('destroy') };
  const q = new ConnectionRequests(socket, () => calls.push('overflow'));
  const ran: number[] = [];
  for (let i = 0; i <= MAX_WAITING + 3; i++) q.submit(() => ran.push(i));
  assert.deepEqual(ran, [0]);
  assert.equal(q.waiting, 0);
  assert.deepEqual(calls, ['destroy', 'overflow']);
  q.finished({ shouldKeepAlive: true, getHeader: () => undefined } as unknown as ServerResponse);
  assert.deepEqual(ran, [0]);
});

const answerBody = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = (req.url ?? '').slice(1);
  if (!res.headersSent) res.writeHead(200, { 'content-length': body.length }).end(body);
};

test('attack-pipelined-heads: a head with as many fields as the server reads is answered 431, one over its byte limit too; neither runs', async () => {
  const many = Array.from({ length: HEAD_LIMITS.maxHeaderFields }, (_, i) => `X-F${i}: v\r\n`).join('');
  const r1 = await pipelined(post('/many', '{}', many) + post('/after', '{}', 'Connection: close\r\n'), answerBody);
  assert.deepEqual(r1.events, [], 'no handler ran');
  assert.deepEqual(r1.answers, ['431 ']);
  const big = `X-Big: ${'a'.repeat(HEAD_LIMITS.maxHeaderBytes)}\r\n`;
  const r2 = await pipelined(post('/big', '{}', big), answerBody);
  assert.deepEqual(r2.events, []);
  assert.deepEqual(r2.answers, ['431 ']);
  const r3 = await pipelined(post('/ok', '{}', Array.from({ length: 20 }, (_, i) => `X-F${i}: v\r\n`).join('') + 'Connection: close\r\n'), answerBody);
  assert.deepEqual(r3.answers, ['200 ok'], 'ordinary heads are read as before');
});

test('bad framing after the head is answered, not dropped: a bad chunk size gets 400; bytes after a complete request get its own answer, then 400', async () => {
  const chunked = 'POST /chunked HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n';
  const r1 = await pipelined(chunked, answerBody);
  assert.deepEqual(r1.answers, ['400 '], 'the request whose body broke is answered');
  // a body sent without a length: the request has none, and its bytes read as a next request line
  const r2 = await pipelined('POST /nolength HTTP/1.1\r\nHost: t\r\n\r\n{"k":"v"}', answerBody);
  assert.deepEqual(r2.answers, ['200 nolength', '400 '], 'the complete request keeps its answer; the garbage after it gets 400');
});

test('attack-refusal-listener-flood: bytes that keep breaking the framing behind a pending answer are refused once (no listener per chunk), then that answer, then 400', async () => {
  const pki = await createMtlsPki();
  let listeners = -1;
  const h = await startServer(pki.serverSvid, pki.both, {
    handler: async (req, res) => {
      req.resume();
      await sleep(300); // the garbage arrives meanwhile
      listeners = res.listenerCount('finish');
      res.writeHead(200, { 'content-length': 4 }).end('slow');
    },
  });
  try {
    const text = await new Promise<string>((resolve, reject) => {
      const sock = connectClient(pki, h.server.port);
      const data: Buffer[] = [];
      sock.on('secureConnect', async () => {
        sock.write(post('/slow', '{}'));
        for (let i = 0; i < 300 && !sock.destroyed; i++) {
          sock.write('\x01garbage\r\n'); // one TLS record each
          await new Promise((r) => setImmediate(r));
        }
      });
      sock.on('data', (c: Buffer) => data.push(c));
      sock.on('error', reject);
      sock.on('close', () => resolve(Buffer.concat(data).toString('latin1')));
    });
    assert.ok(listeners >= 0 && listeners <= 3, `finish listeners on the pending answer: ${listeners}`);
    assert.match(text, /^HTTP\/1\.1 200[\s\S]*\r\n\r\nslowHTTP\/1\.1 400 /);
  } finally {
    await h.server.close();
  }
});
