/**
 * The router's `beforeDecision` wait (FI-13 pacing): a decision waits for its turn before the
 * identity pre-check and before the full check, and a client that left while it waited gets
 * no decision and no handler run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../lib/log.js';
import { SpiffeId } from '../spiffe/id.js';
import { guardBody } from './guards.js';
import '../protocol/errors.js';
import { defineRoute } from './route.js';
import { createRouter } from './router.js';
import { s } from './schema.js';

const peer = SpiffeId.parse('spiffe://spike.ist/app/one');
const logger = createLogger({ component: 'turn-test', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

test('FI-13 router: decisions wait for their turn (pre-check, then full check); a client gone meanwhile gets no decision and no handler', async () => {
  const calls: string[] = [];
  const turns: Array<() => void> = [];
  const guard = guardBody<{ k: string }>('k', {
    admits: () => { calls.push('admits'); return true; },
    allow: () => { calls.push('allow'); return true; },
  });
  const router = createRouter([defineRoute({ path: '/r', body: s.object({ k: s.string() }), guard, handle: () => { calls.push('handle'); return {}; } })], {
    isReady: () => true, logger, maxBodyBytes: 1024,
    beforeDecision: (_p, body) => {
      calls.push(body === undefined ? 'wait:pre' : 'wait:full');
      return new Promise<void>((resolve) => turns.push(resolve));
    },
  });
  const srv = http.createServer((req, res) => void router(req, res, peer));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  const send = (): net.Socket => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => undefined);
    sock.write('POST /r HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"k":"v"}');
    return sock;
  };
  const until = async (cond: () => boolean): Promise<void> => {
    while (!cond()) await new Promise((r) => setTimeout(r, 2));
  };
  try {
    // A client that stays: both waits, then both checks and the handler.
    const staying = send();
    const answered = new Promise<string>((resolve) => staying.on('data', (d: Buffer) => resolve(d.toString('latin1').slice(9, 12))));
    await until(() => turns.length === 1);
    turns.shift()!();
    await until(() => turns.length === 1);
    turns.shift()!();
    assert.equal(await answered, '200');
    assert.deepEqual(calls, ['wait:pre', 'admits', 'wait:full', 'admits', 'allow', 'handle']);
    staying.destroy();
    // A client that leaves while its decision waits: nothing is decided or handled for it.
    calls.length = 0;
    const leaving = send();
    await until(() => turns.length === 1);
    leaving.destroy();
    await new Promise((r) => setTimeout(r, 50)); // the server sees the close
    turns.shift()!();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(calls, ['wait:pre']);
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
