/**
 * endResponse: an answer's body (which may hold secret values) is zeroed once flushed, and also
 * when the response closes without being flushed: a client that goes away before its answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { endResponse } from './connection.js';
import { lingerLimits } from './linger.js';

async function answerAfterReset(when: 'closed' | 'queued'): Promise<Buffer> {
  const body = Buffer.from('{"data":{"password":"p4ssw0rd"}}');
  let arrived!: () => void;
  const ready = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const server = http.createServer((req, res) => {
    const answer = (): void => {
      endResponse(req, res, 200, ['Content-Type', 'application/json', 'Content-Length', String(body.length)], body, false, lingerLimits());
    };
    // 'closed': the handler answers after the client's reset was seen (its response closed
    // already). 'queued': two pipelined requests, the first never answered, so the second's
    // answer waits in its response (no socket yet) when the reset comes.
    if (when === 'closed') {
      res.once('close', () => setImmediate(answer));
      arrived();
    } else if (req.url === '/2') {
      answer();
      arrived();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const port = (server.address() as net.AddressInfo).port;
    const c = net.connect(port, '127.0.0.1');
    c.on('error', () => undefined);
    await once(c, 'connect');
    c.write(when === 'closed' ? 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' : 'GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n');
    await ready; // the request (or, pipelined, the second one) is being handled
    c.resetAndDestroy();
    const deadline = Date.now() + 10_000;
    while (body.some((b) => b !== 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return body;
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

test('a body answered to a client that already went away is zeroed at once', async () => {
  assert.ok((await answerAfterReset('closed')).every((b) => b === 0), 'the unsent body is zeroed');
});

test('a body queued behind an unanswered pipelined request is zeroed when the client goes away', async () => {
  assert.ok((await answerAfterReset('queued')).every((b) => b === 0), 'the unsent body is zeroed');
});

test('a flushed body is zeroed', async () => {
  const body = Buffer.from('{"data":{"password":"p4ssw0rd"}}');
  const server = http.createServer((req, res) => {
    endResponse(req, res, 200, ['Content-Type', 'application/json', 'Content-Length', String(body.length)], body, false, lingerLimits());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const port = (server.address() as net.AddressInfo).port;
    const got = await new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, agent: false }, (r) => {
        let s = '';
        r.setEncoding('utf8').on('data', (d: string) => { s += d; }).on('end', () => resolve(s));
      }).on('error', reject);
    });
    assert.equal(got, '{"data":{"password":"p4ssw0rd"}}');
    assert.ok(body.every((b) => b === 0));
  } finally {
    server.close();
  }
});
