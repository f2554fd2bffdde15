/**
 * `AbortSignal` on every `NexusClient` call (issue 15), over real mTLS against scripted
 * servers: a signal aborted before the call rejects at once with its reason and sends nothing;
 * one aborted while the request is in flight (no answer yet, or half a body) rejects with its
 * reason and is not failed over to another Nexus; a stream call's body stream ends with it.
 * Both HTTP clients are covered: the `node:https` one of `connect` and an undici dispatcher.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, type Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createMtlsDispatcher, createMtlsServer, type MtlsServer } from '../spiffe/tls/index.js';
import { authorizeIf } from '../spiffe/authorize.js';
import { StaticX509Source } from '../spiffe/source.js';
import { createLogger } from '../lib/log.js';
import { bundleSetOf, createCa, makeSvid, type TestCa } from '../../test/helpers/pki.js';
import { NexusClient } from './client.js';
import type { CallOptions } from './types.js';

const TD = 'abort.test';
const ENV = { SPIKE_TRUST_ROOT_NEXUS: TD };

let ca: TestCa;
let source: StaticX509Source;
const servers: MtlsServer[] = [];
const clients: NexusClient[] = [];

/** A Nexus stand-in: counts requests, then runs `answer` (which may never answer). */
/** A stub Nexus that answers once the request body ended, or at once with `early` (a stream answered as it arrives). */
async function server(answer: (req: IncomingMessage, res: ServerResponse) => void, early = false): Promise<{ url: string; requests: () => number }> {
  let n = 0;
  const s = createMtlsServer({
    source: new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/spike/nexus`), bundleSetOf(ca)),
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ component: 'abort-test', level: 'silent' }),
    handler: (req, res) => {
      n++;
      req.resume();
      if (early) answer(req, res);
      else req.on('end', () => answer(req, res));
    },
  });
  await s.listen();
  servers.push(s);
  return { url: `https://127.0.0.1:${s.port}`, requests: () => n };
}

async function client(urls: string[], http: 'native' | 'undici' = 'native'): Promise<NexusClient> {
  const c =
    http === 'native'
      ? await NexusClient.connect({ urls, source, env: ENV, timeoutMs: 30_000 })
      : NexusClient.create({
        urls,
        timeoutMs: 30_000,
        dispatcher: createMtlsDispatcher({ source, authorizeServer: authorizeIf((id) => id.toString() === `spiffe://${TD}/spike/nexus`) }),
      });
  clients.push(c);
  return c;
}

/** Waits (polling, generous deadline) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const isAbort = (reason: unknown) => (e: unknown): boolean => (reason === undefined ? e instanceof DOMException && e.name === 'AbortError' : e === reason);

before(async () => {
  ca = await createCa(TD);
  source = new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/spike/pilot/role/superuser`), bundleSetOf(ca));
});

after(async () => {
  for (const c of clients) await c.close();
  for (const s of servers) await s.close();
});

test('an already aborted signal: every call rejects with the abort reason and nothing is sent', async () => {
  const s = await server((_req, res) => res.end('{}'));
  const c = await client([s.url]);
  const o: CallOptions = { signal: AbortSignal.abort() };
  const share = { id: 1, value: new Uint8Array(32).fill(7) };
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['getSecret', () => c.getSecret('a/b', o)],
    ['putSecret', () => c.putSecret('a/b', { k: 'v' }, o)],
    ['deleteSecret', () => c.deleteSecret('a/b', [], o)],
    ['undeleteSecret', () => c.undeleteSecret('a/b', [], o)],
    ['destroySecret', () => c.destroySecret('a/b', [], o)],
    ['listSecrets', () => c.listSecrets(o)],
    ['getSecretMetadata', () => c.getSecretMetadata('a/b', o)],
    ['putPolicy', () => c.putPolicy({ name: 'p', spiffeIdPattern: '^x$', pathPattern: '^y$', permissions: ['read'] }, o)],
    ['getPolicy', () => c.getPolicy('p', o)],
    ['listPolicies', () => c.listPolicies(o)],
    ['deletePolicy', () => c.deletePolicy('p', o)],
    ['encrypt', () => c.encrypt(Buffer.from('x'), o)],
    ['decrypt', () => c.decrypt({ version: 1, nonce: Buffer.alloc(12), ciphertext: Buffer.alloc(17) }, o)],
    ['encryptStream', () => c.encryptStream(Buffer.from('x'), o)],
    ['decryptStream', () => c.decryptStream(Buffer.from('x'), o)],
    ['recover', () => c.recover(o)],
    ['restore', () => c.restore(share, o)],
    ['getCommitments', () => c.getCommitments(o)],
    ['verifyShard', () => c.verifyShard(share, o)],
    ['auditHash', () => c.auditHash('a/b', o)],
    ['auditVerify', () => c.auditVerify(['line'], o)],
    ['refreshShares', () => c.refreshShares(o)],
    ['reshare', () => c.reshare(o)],
    ['listSecretsPage', () => c.listSecretsPage(o)],
    ['secretPaths', () => c.secretPaths(o).next()],
    ['rewrap', () => c.rewrap({ version: 1, nonce: Buffer.alloc(12), ciphertext: Buffer.alloc(17) }, o)],
    ['acceptRollback', () => c.acceptRollback(o)],
    ['rotateRootKey', () => c.rotateRootKey(o)],
  ];
  // Every public method of the client is in the table (a new call without a signal fails here).
  const methods = Object.getOwnPropertyNames(NexusClient.prototype).filter((m) => m !== 'constructor');
  assert.deepEqual(methods.filter((m) => !calls.some(([name]) => name === m)), [], 'client methods missing from this test');
  // The base class holds the transport's plumbing, no calls of its own: a member added there
  // must be added here (to the table when it is a call).
  const core = Object.getOwnPropertyNames(Object.getPrototypeOf(NexusClient.prototype) as object).sort();
  assert.deepEqual(core, ['call', 'callBytes', 'callUntilDone', 'close', 'closeSignal', 'constructor', 'selfId', 'streamTimeouts', 'urls'], 'NexusClientCore members changed');
  for (const [name, call] of calls) await assert.rejects(call(), isAbort(undefined), name);
  assert.equal(s.requests(), 0, 'nothing reached the server');
});

for (const http of ['native', 'undici'] as const) {
  test(`${http}: aborted while waiting for the answer → rejects with the reason, no fail-over to the next Nexus`, async () => {
    const held: ServerResponse[] = [];
    const first = await server((_req, res) => held.push(res)); // never answers
    const second = await server((_req, res) => res.end('{"data":{"k":"v"}}'));
    const c = await client([first.url, second.url], http);
    const ac = new AbortController();
    const reason = new Error('user gave up');
    const pending = c.getSecret('a/b', { signal: ac.signal });
    await until(() => first.requests() === 1, 'the request to reach the first server');
    ac.abort(reason);
    await assert.rejects(pending, isAbort(reason));
    assert.equal(second.requests(), 0, 'an aborted call is not failed over');
    for (const r of held) r.destroy();
  });

  test(`${http}: aborted in the middle of the response body → rejects with the reason`, async () => {
    const held: ServerResponse[] = [];
    const s = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"data":{"k":"'); // …and nothing more
      held.push(res);
    });
    const c = await client([s.url], http);
    const ac = new AbortController();
    const pending = c.getSecret('a/b', { signal: ac.signal });
    await until(() => held.length === 1, 'the half-sent body');
    await new Promise((r) => setTimeout(r, 50)); // let the headers travel; the assertion does not depend on it
    ac.abort();
    await assert.rejects(pending, isAbort(undefined));
    for (const r of held) r.destroy();
  });
}

/**
 * A stream encrypt in progress: the stub answers at once and keeps its answer open, the request
 * body is still being written (a chunked request sends its headers with its first chunk).
 */
async function streamInProgress(): Promise<{ body: Readable; input: PassThrough; ac: AbortController; done: () => void }> {
  const held: ServerResponse[] = [];
  const s = await server((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(Buffer.alloc(16, 1));
    held.push(res);
  }, true);
  const c = await client([s.url]);
  const ac = new AbortController();
  const input = new PassThrough();
  input.write(Buffer.alloc(16, 2));
  const body = await c.encryptStream(input, { signal: ac.signal });
  return { body, input, ac, done: () => held.forEach((r) => r.destroy()) };
}

test('stream call: aborting mid-response ends the body stream with an error', async () => {
  const { body, input, ac, done } = await streamInProgress();
  const read = (async () => {
    for await (const chunk of body) void chunk;
  })();
  const reason = new Error('caller gave up');
  ac.abort(reason);
  // the reader sees the caller's reason (not the socket's reset), and the input stream is ended too
  await assert.rejects(read, (e: unknown) => e === reason);
  assert.equal(input.destroyed, true, 'the request body stream is destroyed');
  done();
});

test('connect(): its signal ends the wait for a first SVID from a configured socket that does not answer', async () => {
  const ac = new AbortController();
  const t0 = performance.now();
  setTimeout(() => ac.abort(new Error('stop waiting')), 100);
  // without the signal this waits for the source timeout (60 s here)
  await assert.rejects(
    NexusClient.connect({ urls: ['https://127.0.0.1:1'], endpoint: 'unix:///tmp/spike-no-such-agent-7c1d.sock', sourceTimeoutMs: 60_000, signal: ac.signal, env: {} }),
    /stop waiting/,
  );
  assert.ok(performance.now() - t0 < 30_000, 'ended by the signal, not by the 60 s source timeout');
  const done = new AbortController();
  done.abort(new Error('already'));
  await assert.rejects(NexusClient.connect({ urls: ['https://127.0.0.1:1'], signal: done.signal, env: {} }), /already/);
});

test('stream call: aborting while the answer is piped (no error listener of the caller\'s own) does not crash the process', async () => {
  const { body, ac, done } = await streamInProgress();
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => void uncaught.push(e);
  process.on('uncaughtException', onUncaught);
  try {
    const sink = new PassThrough();
    sink.resume();
    body.pipe(sink);
    ac.abort(new Error('caller gave up'));
    await new Promise((r) => body.once('close', r));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(uncaught, [], 'no uncaught exception');
    assert.equal(body.destroyed, true);
  } finally {
    process.off('uncaughtException', onUncaught);
    done();
  }
});
