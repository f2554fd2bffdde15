/**
 * Router pipeline tests over a real HTTP server on port 0 (POL-01, POL-16, POL-19, POL-20,
 * SEC-01, SEC-19, D10, D15, D16, P4 `every-route-guarded`).
 * The peer identity is supplied by the test wrapper (the mTLS layer is tested elsewhere).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../lib/log.js';
import { SpiffeId } from '../spiffe/id.js';
import { NexusAuthorizer, nexusGuards } from './authz.js';
import { PolicyEngine } from './policy/index.js';
import { ApiError, PlainTextError, notFound } from '../protocol/errors.js';
import { Bytes32, DEFAULT_LINGER, GoTime, type Guard, type Route, RouteDefinitionError, createRouter, defineRoute, denyAll, goJsonString, guardIdentity, s } from '../http/index.js';
import { describeRoutes, probeGuard } from '../../test/helpers/route-table.js';
import { keeperGuards } from '../keeper/guards.js';
import { loadTrustRoots, recognisers, spikeIds, ACTIONS, BootstrapVerifyRequest, CipherDecryptRequest, CipherEncryptRequest, ERROR_SHAPES, PATHS, PolicyByIdRequest, PolicyListRequest, PolicyPutRequest, RecoverRequest, RestoreRequest, SecretGetRequest, SecretListRequest, SecretPutRequest, SecretVersionsRequest, ShardContributeRequest, ShardGetRequest, type PolicyGetResponse, type RecoverResponse, type SecretGetResponse, type SecretMetadataResponse, intKeyedMap, policyGetResponse } from '../protocol/index.js';
import { describeStall, stallCheck } from '../../test/helpers/stall.js';

const CANARY_PATH = 'canary/zq7x/path';
const CANARY_VALUE = 'canary-value-9f8e7d';

// ---- fixture: the whole Nexus + Keeper route table with stub handlers

const ids = recognisers(loadTrustRoots({}));
const engine = new PolicyEngine();
engine.load([{ name: 'reader', spiffeIdPattern: '^spiffe://spike\\.ist/app/reader$', pathPattern: '^apps/.*$', permissions: ['read'] }], 1);
const authz = new NexusAuthorizer(engine, ids);
const g = nexusGuards(authz);
const kg = keeperGuards(ids);
const calls: string[] = [];
const store = new Map<string, Map<string, string>>([['apps/a', new Map([['k', CANARY_VALUE]])]]);
let ready = true;

function stub(name: string, result: unknown = {}): () => never {
  return (() => {
    calls.push(name);
    return result;
  }) as () => never;
}

const routes: Route[] = [
  defineRoute({
    path: PATHS.secrets, body: SecretPutRequest, guard: g.secretPut,
    handle: ({ body }) => {
      calls.push('secret.put');
      store.set(body.path, body.values);
      return {};
    },
  }),
  defineRoute({
    path: PATHS.secrets, action: ACTIONS.get, body: SecretGetRequest, guard: g.secretGet, errorShape: ERROR_SHAPES.secretGet,
    handle: ({ body }) => {
      calls.push('secret.get');
      const v = store.get(body.path);
      if (v === undefined) throw notFound();
      return { data: v };
    },
  }),
  defineRoute({ path: PATHS.secrets, action: ACTIONS.delete, body: SecretVersionsRequest, guard: g.secretDelete, handle: stub('secret.delete') }),
  defineRoute({ path: PATHS.secrets, action: ACTIONS.undelete, body: SecretVersionsRequest, guard: g.secretUndelete, handle: stub('secret.undelete') }),
  defineRoute({ path: PATHS.secrets, action: ACTIONS.destroy, body: SecretVersionsRequest, guard: g.secretDestroy, handle: stub('secret.destroy') }),
  defineRoute({ path: PATHS.secrets, action: ACTIONS.list, body: SecretListRequest, guard: g.secretList, errorShape: ERROR_SHAPES.secretList, handle: stub('secret.list', { keys: [] }) }),
  defineRoute({
    path: PATHS.secretsMetadata, action: ACTIONS.get, body: SecretGetRequest, guard: g.secretMetadata, errorShape: ERROR_SHAPES.secretMetadata,
    handle: () => {
      throw new Error(`backend exploded on ${CANARY_PATH} with ${CANARY_VALUE}`);
    },
  }),
  defineRoute({ path: PATHS.policy, body: PolicyPutRequest, guard: g.policyPut, handle: stub('policy.put') }),
  defineRoute({ path: PATHS.policy, action: ACTIONS.get, body: PolicyByIdRequest, guard: g.policyGet, errorShape: ERROR_SHAPES.policyGet, handle: stub('policy.get') }),
  defineRoute({ path: PATHS.policy, action: ACTIONS.list, body: PolicyListRequest, guard: g.policyList, errorShape: ERROR_SHAPES.policyList, handle: stub('policy.list', { policies: [] }) }),
  defineRoute({ path: PATHS.policy, action: ACTIONS.delete, body: PolicyByIdRequest, guard: g.policyDelete, handle: stub('policy.delete') }),
  defineRoute({
    path: PATHS.encrypt, body: CipherEncryptRequest, guard: g.cipher, errorShape: ERROR_SHAPES.encrypt, handle: stub('cipher.encrypt.json'),
    stream: {
      guard: g.cipher,
      maxBodyBytes: 1024,
      handle: async (ctx) => {
        calls.push('cipher.encrypt.stream');
        const b = await ctx.readBody();
        return Buffer.concat([Buffer.from([1]), b]);
      },
    },
  }),
  defineRoute({
    path: PATHS.decrypt, body: CipherDecryptRequest, guard: g.cipher, errorShape: ERROR_SHAPES.decrypt, handle: stub('cipher.decrypt.json'),
    stream: {
      guard: g.cipher,
      maxBodyBytes: 1024,
      handle: async (ctx) => {
        calls.push('cipher.decrypt.stream');
        const b = await ctx.readBody();
        if (b[0] !== 1) throw new PlainTextError(400, 'crypto_unsupported_version');
        return b.subarray(1);
      },
    },
  }),
  defineRoute({ path: PATHS.recover, body: RecoverRequest, guard: g.recover, allowBeforeReady: true, errorShape: ERROR_SHAPES.recover, handle: stub('recover', { shards: null }) }),
  defineRoute({ path: PATHS.restore, body: RestoreRequest, guard: g.restore, allowBeforeReady: true, errorShape: ERROR_SHAPES.restore, handle: stub('restore') }),
  defineRoute({ path: PATHS.verify, body: BootstrapVerifyRequest, guard: g.bootstrapVerify, errorShape: ERROR_SHAPES.verify, handle: stub('verify', { hash: '' }) }),
];
const keeperRoutes: Route[] = [
  defineRoute({ path: PATHS.keeperContribute, body: ShardContributeRequest, guard: kg.contribute, handle: stub('keeper.contribute') }),
  defineRoute({ path: PATHS.keeperShard, body: ShardGetRequest, guard: kg.shard, errorShape: ERROR_SHAPES.keeperShard, handle: stub('keeper.shard') }),
];

const logLines: Array<Record<string, unknown>> = [];
let rawLog = '';
const logSink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    const text = chunk.toString();
    rawLog += text;
    for (const line of text.split('\n')) if (line.trim() !== '') logLines.push(JSON.parse(line) as Record<string, unknown>);
    cb();
  },
});
const logger = createLogger({ component: 'router-test', level: 'info', destination: logSink });
const router = createRouter([...routes, ...keeperRoutes], { isReady: () => ready, logger, maxBodyBytes: 64 * 1024 });

const td = spikeIds('spike.ist');
const PEERS = {
  pilot: td.pilotSuperuser,
  reader: SpiffeId.parse('spiffe://spike.ist/app/reader'),
  stranger: SpiffeId.parse('spiffe://other.org/app/reader'),
  nobody: SpiffeId.parse('spiffe://spike.ist/app/nobody'),
  lookalike: SpiffeId.parse('spiffe://spike.ist/spike/pilot/role/superuser-x'),
  lite: td.liteWorkload,
  recover: td.pilotRecover,
} as const;

let server: http.Server;
let port = 0;
const sockets = new Set<import('node:net').Socket>();
let lastServerSocket: import('node:net').Socket | undefined;
let closedBytes = 0;
/** Bytes the server has read from all sockets so far. */
const bytesRead = (): number => closedBytes + [...sockets].reduce((n, s) => n + s.bytesRead, 0);

before(async () => {
  server = http.createServer((req, res) => {
    lastServerSocket = req.socket;
    const who = req.headers['x-test-peer'];
    const peer = typeof who === 'string' && who in PEERS ? PEERS[who as keyof typeof PEERS] : null;
    void router(req, res, peer);
  });
  // Count bytes at the socket (without adding readers that would change flow control).
  server.on('connection', (sock: import('node:net').Socket) => {
    sockets.add(sock);
    sock.on('close', () => {
      closedBytes += sock.bytesRead;
      sockets.delete(sock);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function post(path: string, body: string | Buffer, opts: { peer?: keyof typeof PEERS | 'none'; method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1', port, path, method: opts.method ?? 'POST', agent: false,
        headers: { 'content-type': 'application/json', 'x-test-peer': opts.peer ?? 'pilot', ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const lastLog = (): Record<string, unknown> => logLines[logLines.length - 1] ?? {};

// ---- tests

test('JSON success carries SPIKE headers; Go JSON body', async () => {
  const r = await post('/v1/store/secrets?action=get', '{"path":"apps/a"}');
  assert.equal(r.status, 200);
  assert.equal(r.body, `{"data":{"k":"${CANARY_VALUE}"}}`);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers['cache-control'], 'no-store, no-cache, must-revalidate, private');
  assert.equal(r.headers['pragma'], 'no-cache');
  assert.equal(r.headers['expires'], '0');
});

test('POL-19: wrong method → 400 fallback, checked before readiness', async () => {
  ready = false;
  try {
    for (const m of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      const r = await post('/v1/store/secrets', m === 'GET' ? '' : '{}', { method: m });
      assert.equal(r.status, 400, m);
      assert.equal(r.body, '{"err":"api_bad_request","message":"method not allowed"}');
    }
  } finally {
    ready = true;
  }
});

test('readiness: not ready → 503 for known and unknown routes; recover/restore are exempt', async () => {
  ready = false;
  try {
    for (const p of ['/v1/store/secrets?action=list', '/v1/nope', '/v1/acl/policy']) {
      const r = await post(p, '{}');
      assert.equal(r.status, 503, p);
      assert.match(r.body, /"err":"state_not_ready"/);
    }
    const before = calls.length;
    const r = await post('/v1/operator/recover', '{}', { peer: 'recover' });
    assert.equal(r.status, 200);
    assert.equal(calls[before], 'recover');
  } finally {
    ready = true;
  }
});

test('POL-19: route confusion never reaches another handler', async () => {
  const before = calls.length;
  for (const p of [
    '/v1/store/secrets?action=get&action=delete', '/v1/store/secrets?action=GET', '/v1/store/secrets?action=nope',
    '/v1/store/secrets/', '//v1/store/secrets', '/v1/store%2Fsecrets', '/v1/store/secrets%3Faction=get', '/V1/store/secrets',
    '/v1/store/keep', '/v1/auth/initialization', '/', '', '/v1/store/secrets/metadata', '/v1/store/secrets/metadata?action=',
    'http://example.org/v1/store/secrets', '/v1/store/./secrets', '/v1/store/secrets/../secrets',
    // a fragment is never part of a request target: not read as the route before it (attacker review)
    '/v1/store/secrets#x?action=get', '/v1/store/secrets?action=get#x', '/v1/store/secrets#x',
  ]) {
    const r = await post(p === '' ? '/?' : p, '{"path":"apps/a","values":{}}');
    assert.equal(r.status, 400, p);
    assert.match(r.body, /^\{"err":"api_bad_request"/, p);
  }
  assert.equal(calls.length, before, 'no handler ran');
  // `?action=` (empty) is the default action (put).
  const r = await post('/v1/store/secrets?action=', '{"path":"apps/b","values":{}}');
  assert.equal(r.status, 200);
  assert.equal(calls[calls.length - 1], 'secret.put');
});

test('POL-20/D10: unauthorised get on an existing and a missing path are identical 401s with the route shape', async () => {
  const a = await post('/v1/store/secrets?action=get', '{"path":"apps/a"}', { peer: 'nobody' });
  const b = await post('/v1/store/secrets?action=get', '{"path":"apps/missing"}', { peer: 'nobody' });
  assert.equal(a.status, 401);
  assert.deepEqual([a.status, a.body], [b.status, b.body]);
  assert.equal(a.body, '{"data":null,"err":"access_unauthorized"}');
  // The authorised reader gets 404 for the missing one: existence is only visible after authz.
  const c = await post('/v1/store/secrets?action=get', '{"path":"apps/missing"}', { peer: 'reader' });
  assert.equal(c.status, 404);
  assert.equal(c.body, '{"data":null,"err":"api_not_found"}');
  assert.equal((await post('/v1/store/secrets?action=get', '{"path":"apps/a"}', { peer: 'reader' })).status, 200);
  assert.equal((await post('/v1/store/secrets?action=get', '{"path":"apps/a"}', { peer: 'stranger' })).status, 401);
  assert.equal((await post('/v1/store/secrets?action=get', '{"path":"apps/a"}', { peer: 'lookalike' })).status, 401);
  assert.equal((await post('/v1/store/secrets?action=get', '{"path":"apps/a"}', { peer: 'none' })).status, 401);
});

test('identity authorisation comes before the body: a malformed body from a caller with no right on the route → 401; from a legitimate caller of the route → 400', async () => {
  const r = await post('/v1/store/secrets?action=get', '{"path":', { peer: 'nobody' });
  assert.equal(r.status, 401);
  assert.equal(r.body, '{"data":null,"err":"access_unauthorized"}');
  // `reader` holds a read policy (on apps/*): a legitimate caller of the route, so it learns
  // about its malformed body; a well-formed body for a path it may not read is still a 401.
  const bad = await post('/v1/store/secrets?action=get', '{"path":', { peer: 'reader' });
  assert.equal(bad.status, 400);
  assert.match(bad.body, /^\{"data":null,"err":"api_bad_request","message":"[^"]+"\}$/);
  assert.equal((await post('/v1/store/secrets?action=get', '{"path":"other/x"}', { peer: 'reader' })).status, 401);
  // ... but it has no write policy, so a malformed put is a 401 before the body is looked at.
  assert.equal((await post('/v1/store/secrets', '{"path":', { peer: 'reader' })).status, 401);
  const d = await post('/v1/store/secrets?action=get', '{"path":"apps/a","path":"apps/b"}', { peer: 'pilot' });
  assert.equal(d.status, 400);
  const dots = await post('/v1/store/secrets', '{"path":"apps/../x","values":{}}', { peer: 'pilot' });
  assert.equal(dots.status, 400);
  assert.equal(dots.body, '{"err":"api_bad_request","message":"invalid path"}');
});

test('P1: JSON requests whose bodies arrive with their headers are answered on one kept-alive connection (their answers are not early ones)', async () => {
  const { connect } = await import('node:net');
  const body = '{"path":"apps/a"}';
  const one = `POST /v1/store/secrets?action=get HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Test-Peer: pilot\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const sock = connect(port, '127.0.0.1');
  let answers = '';
  sock.on('data', (c: Buffer) => {
    answers += c.toString('latin1');
  });
  const count = (): number => (answers.match(/HTTP\/1\.1 200 OK/g) ?? []).length;
  try {
    for (let i = 1; i <= 3; i++) {
      sock.write(one); // headers and body in one write, as clients send a small JSON request
      const deadline = Date.now() + 10_000;
      while (count() < i && !sock.destroyed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(count(), 3, 'three answers on the one connection');
    assert.doesNotMatch(answers, /connection: close/i);
    assert.equal(sock.destroyed, false);
  } finally {
    sock.destroy();
  }
});

test('SEC-19/D15/D16: an unexpected exception is a 500 with no detail; logs hold no values or paths', async () => {
  const r = await post('/v1/store/secrets/metadata?action=get', JSON.stringify({ path: CANARY_PATH }));
  assert.equal(r.status, 500);
  assert.equal(r.body, '{"metadata":{"currentVersion":0,"oldestVersion":0,"createdTime":"0001-01-01T00:00:00Z","updatedTime":"0001-01-01T00:00:00Z","maxVersions":0},"err":"api_internal_error"}');
  await post('/v1/store/secrets', JSON.stringify({ path: CANARY_PATH, values: { k: CANARY_VALUE } }));
  await post('/v1/store/secrets?action=get', JSON.stringify({ path: CANARY_PATH }), { peer: 'nobody' });
  assert.ok(!rawLog.includes(CANARY_PATH), 'secret path leaked into logs');
  assert.ok(!rawLog.includes(CANARY_VALUE), 'secret value leaked into logs');
  assert.ok(!rawLog.includes('exploded'), 'exception message leaked into logs');
});

test('D16: exactly one request line per request with caller, route, action, decision, status, duration', async () => {
  const before = logLines.length;
  await post('/v1/store/secrets?action=get', '{"path":"apps/a"}', { peer: 'nobody' });
  const lines = logLines.slice(before).filter((l) => l['msg'] === 'request');
  assert.equal(lines.length, 1);
  const l = lastLog();
  assert.equal(l['caller'], 'spiffe://spike.ist/app/nobody');
  assert.equal(l['route'], '/v1/store/secrets');
  assert.equal(l['action'], 'get');
  assert.equal(l['decision'], 'deny');
  assert.equal(l['status'], 401);
  assert.equal(typeof l['durationMs'], 'number');
  await post('/v1/store/secrets?action=get', '{"path":"apps/a"}', { peer: 'reader' });
  assert.equal(lastLog()['decision'], 'allow');
  assert.equal(lastLog()['status'], 200);
});

test('SEC-01: a 64 MiB upload is answered 400 at the cap, the connection closed, the rest discarded only up to the linger bound', async () => {
  const total = 64 * 1024 * 1024;
  let reply = 'reset' as Reply | 'reset';
  let read = 0;
  let closed = false;
  // The event loop must not stall on the upload (buffering or parsing 64 MiB would): checked so
  // that only a real stall fails, never scheduler noise (test/helpers/stall.ts).
  const stall = await stallCheck(async () => {
    const before = bytesRead();
    // A keep-alive client: the server itself must decide to close (the client does not ask).
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
    reply = await new Promise<Reply | 'reset'>((resolve) => {
      const req = http.request(
        { host: '127.0.0.1', port, path: '/v1/store/secrets', method: 'POST', agent: keepAlive, headers: { 'content-type': 'application/json', 'x-test-peer': 'pilot', 'transfer-encoding': 'chunked' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
          res.on('error', () => resolve('reset'));
        },
      );
      req.on('error', () => resolve('reset'));
      const chunk = Buffer.alloc(256 * 1024, 0x20);
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    const sock = lastServerSocket;
    assert.ok(sock !== undefined);
    // Wait for the server to close the connection (generous deadline: a loaded machine).
    for (let i = 0; i < 1500 && !sock.destroyed; i++) await new Promise((r) => setTimeout(r, 20));
    closed = sock.destroyed;
    keepAlive.destroy();
    read = bytesRead() - before;
  });
  assert.notEqual(reply, 'reset', 'client should see the 400 before the reset');
  if (reply !== 'reset') {
    assert.equal(reply.status, 400);
    assert.equal(reply.body, '{"err":"api_bad_request","message":"request body too large"}');
    assert.equal(reply.headers['connection'], 'close');
  }
  assert.ok(closed, 'server closed the connection');
  assert.ok(read < 8 * 1024 * 1024, `server read ${read} bytes`);
  assert.ok(stall.ok, describeStall(stall));
});

test('SEC-01: Content-Length over the cap is refused without reading', async () => {
  const r = await post('/v1/store/secrets', Buffer.alloc(65 * 1024, 0x20));
  assert.equal(r.status, 400);
  assert.equal(r.headers['connection'], 'close');
});

test('CIP stream mode: guard runs before the body; capped reader; plain-text errors', async () => {
  const ct = { 'content-type': 'application/octet-stream' };
  const ok = await post('/v1/cipher/encrypt', Buffer.from('hello'), { peer: 'lite', headers: ct });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['content-type'], 'application/octet-stream');
  assert.equal(ok.body, '\u0001hello');
  const before = calls.length;
  const denied = await post('/v1/cipher/encrypt', Buffer.from('hello'), { peer: 'nobody', headers: ct });
  assert.equal(denied.status, 401);
  assert.equal(denied.body, '{"version":0,"nonce":null,"ciphertext":null,"err":"access_unauthorized"}');
  assert.equal(calls.length, before, 'handler not run for a denied caller');
  // A denied stream caller's large body is answered 401 at once and then only discarded up
  // to the linger bound (src/http/linger.ts) before the connection is closed, never read in full.
  const readBefore = bytesRead();
  const deniedBig = await post('/v1/cipher/encrypt', Buffer.alloc(16 * 1024 * 1024), { peer: 'nobody', headers: ct });
  assert.equal(deniedBig.status, 401);
  assert.equal(deniedBig.headers['connection'], 'close');
  const sock = lastServerSocket!;
  for (let i = 0; i < 250 && !sock.destroyed; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(sock.destroyed, 'server closed the connection');
  assert.ok(bytesRead() - readBefore < DEFAULT_LINGER.maxBytes + 2 * 1024 * 1024, `server read ${bytesRead() - readBefore} bytes`);
  const big = await post('/v1/cipher/encrypt', Buffer.alloc(2048), { peer: 'pilot', headers: ct });
  assert.equal(big.status, 400);
  const text = await post('/v1/cipher/decrypt', Buffer.from([2, 1, 2]), { peer: 'pilot', headers: ct });
  assert.equal(text.status, 400);
  assert.equal(text.headers['content-type'], 'text/plain; charset=utf-8');
  assert.equal(text.headers['x-content-type-options'], 'nosniff');
  assert.equal(text.body, 'crypto_unsupported_version\n');
  // `application/octet-stream; x=y` is JSON mode (exact match only).
  const json = await post('/v1/cipher/encrypt', Buffer.from('{"plaintext":"aGVsbG8="}'), { peer: 'pilot', headers: { 'content-type': 'application/octet-stream; x=y' } });
  assert.equal(json.status, 200);
  assert.equal(calls[calls.length - 1], 'cipher.encrypt.json');
});

test('POL-16/P5: break-glass and Keeper routes ignore policies; only their roles pass', async () => {
  engine.load([{ name: 'everything', spiffeIdPattern: '.*', pathPattern: '.*', permissions: ['super'] }], 2);
  try {
    const shard = JSON.stringify({ id: 1, shard: Array(32).fill(1) });
    for (const [p, b] of [['/v1/operator/recover', '{}'], ['/v1/operator/restore', shard], ['/v1/bootstrap/verify', '{"nonce":"AAAAAAAAAAAAAAAA","ciphertext":""}'], ['/v1/store/contribute', `{"shard":${JSON.stringify(Array(32).fill(1))}}`], ['/v1/store/shard', '{}']] as const) {
      const r = await post(p, b, { peer: 'nobody' });
      assert.equal(r.status, 401, p);
      const su = await post(p, b, { peer: 'pilot' });
      assert.equal(su.status, 401, `${p} (superuser is not a break-glass role)`);
    }
    assert.equal((await post('/v1/store/secrets?action=get', '{"path":"apps/a"}', { peer: 'nobody' })).status, 200, 'the super policy does work on secrets');
    assert.equal((await post('/v1/store/secrets?action=get', '{"path":"apps/a"}', { peer: 'lite' })).status, 401, 'lite never reads secrets');
  } finally {
    engine.load([{ name: 'reader', spiffeIdPattern: '^spiffe://spike\\.ist/app/reader$', pathPattern: '^apps/.*$', permissions: ['read'] }], 3);
  }
});

test('P4 every-route-guarded: every registered route has a guard that denies an unrelated identity', () => {
  const unrelated = [PEERS.stranger, PEERS.nobody, PEERS.lookalike, SpiffeId.parse('spiffe://other.org/spike/pilot/role/superuser')];
  const sampleBody: Record<string, unknown> = { path: 'apps/a', values: new Map(), versions: [], id: 'p', version: 0 };
  const table = describeRoutes(router.routes);
  assert.equal(table.length, routes.length + keeperRoutes.length);
  const seen = new Set<string>();
  for (const r of router.routes) {
    seen.add(`${r.path}?${r.action}`);
    for (const peer of unrelated) {
      assert.equal(probeGuard(r, peer, sampleBody), false, `${r.name} allows ${peer.toString()}`);
      assert.equal(r.guard.admits(peer), false, `${r.name} pre-admits ${peer.toString()}`);
      if (r.streamGuard !== undefined) assert.equal(r.streamGuard.check(peer, undefined), false, `${r.name} (stream) allows ${peer.toString()}`);
    }
  }
  // every route of SPIKE's v1 API (Nexus and Keeper) is present
  for (const k of ['/v1/store/secrets?', '/v1/store/secrets?get', '/v1/store/secrets?delete', '/v1/store/secrets?undelete', '/v1/store/secrets?list',
    '/v1/store/secrets/metadata?get', '/v1/acl/policy?', '/v1/acl/policy?get', '/v1/acl/policy?list', '/v1/acl/policy?delete', '/v1/cipher/encrypt?',
    '/v1/cipher/decrypt?', '/v1/operator/recover?', '/v1/operator/restore?', '/v1/bootstrap/verify?', '/v1/store/contribute?', '/v1/store/shard?']) {
    assert.ok(seen.has(k), k);
  }
});

test('ATTACK body oracle (unit): every route answers 401 to a caller with no rights, whatever the body (malformed, invalid, all-zero shard, empty)', async () => {
  const bodies = ['{"id":', '{"id":[],"shard":"x","path":7}', JSON.stringify({ id: 1, shard: Array(32).fill(0) }), ''];
  const before = calls.length;
  for (const r of router.routes) {
    const target = r.action === '' ? r.path : `${r.path}?action=${r.action}`;
    for (const peer of ['nobody', 'stranger', 'lookalike', 'none'] as const) {
      for (const b of bodies) {
        const rep = await post(target, b, { peer });
        assert.equal(rep.status, 401, `${peer} × ${r.name} × ${b}: ${rep.body}`);
        assert.match(rep.body, /"(err|Err)":"access_unauthorized"/);
        assert.ok(!rep.body.includes('"message"'), rep.body);
      }
    }
  }
  // the reported case, with the restore error shape: no validation message, no hint
  const zero = await post('/v1/operator/restore', JSON.stringify({ id: 1, shard: Array(32).fill(0) }), { peer: 'recover' });
  assert.equal(zero.body, '{"collected":0,"remaining":0,"restored":false,"err":"access_unauthorized"}');
  assert.equal(calls.length, before, 'no handler ran');
});

test('P4 every-route-guarded: a route without a guard, or with a forged one, is refused', () => {
  // Type level: the following lines would not compile without the expect-error markers.
  assert.throws(
    // @ts-expect-error — `guard` is required
    () => defineRoute({ path: '/x', body: s.empty(), handle: () => ({}) }),
    RouteDefinitionError,
  );
  // @ts-expect-error — a look-alike object is not a Guard (the brand key cannot be named)
  const forged: Guard<unknown> = { name: 'fake', check: () => true };
  assert.throws(() => defineRoute({ path: '/x', body: s.empty(), guard: forged, handle: () => ({}) }), RouteDefinitionError);
  const cast = { name: 'fake', check: () => true } as unknown as Guard<unknown>;
  assert.throws(() => defineRoute({ path: '/x', body: s.empty(), guard: cast, handle: () => ({}) }), RouteDefinitionError);
  assert.throws(() => createRouter([{ path: '/x' } as unknown as Route], { isReady: () => true, logger }), RouteDefinitionError);
  const r1 = defineRoute({ path: '/x', body: s.empty(), guard: denyAll(), handle: () => ({}) });
  assert.throws(() => createRouter([r1, r1], { isReady: () => true, logger }), RouteDefinitionError);
  // Guards must also match the body type: a guard for secret bodies cannot guard policy routes.
  const secretGuard = g.secretGet;
  // @ts-expect-error — Guard<SecretGetRequest> is not a Guard<{ id: string }>
  defineRoute({ path: '/y', body: PolicyByIdRequest, guard: secretGuard, handle: () => ({}) });
  assert.ok(guardIdentity('x', () => true));
});

test('a throwing guard fails closed with 500', async () => {
  const boom = guardIdentity('boom', () => {
    throw new ApiError('api_internal_error', 'x');
  });
  const r = createRouter([defineRoute({ path: '/b', body: s.empty(), guard: boom, handle: stub('boom') })], { isReady: () => true, logger });
  const srv = http.createServer((req, res) => void r(req, res, PEERS.pilot));
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const p = (srv.address() as AddressInfo).port;
  const status = await new Promise<number>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: p, path: '/b', method: 'POST', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.end('{}');
  });
  srv.closeAllConnections();
  await new Promise((res) => srv.close(res));
  assert.equal(status, 500);
  assert.ok(!calls.includes('boom'));
});

test('handlers may return the typed wire responses (compile-time check)', () => {
  const t = GoTime.ZERO;
  const meta = (): SecretMetadataResponse => ({
    versions: intKeyedMap([[1, { createdTime: t, version: 1, deletedTime: null }]]),
    metadata: { currentVersion: 1, oldestVersion: 1, createdTime: t, updatedTime: t, maxVersions: 10 },
  });
  const get = (): SecretGetResponse => ({ data: new Map([['k', 'v']]) });
  const rec = (): RecoverResponse => ({ shards: intKeyedMap([[1, new Bytes32(Buffer.alloc(32, 1))]]) });
  const pg = (): PolicyGetResponse => policyGetResponse({ name: 'n', spiffeIdPattern: 's', pathPattern: 'p', permissions: ['read'], createdAt: new Date(0), updatedAt: t });
  for (const h of [meta, get, rec, pg]) {
    assert.ok(defineRoute({ path: '/typed', body: SecretGetRequest, guard: g.secretMetadata, handle: h }));
  }
  assert.equal(goJsonString(meta()), '{"versions":{"1":{"createdTime":"0001-01-01T00:00:00Z","version":1,"deletedTime":null}},"metadata":{"currentVersion":1,"oldestVersion":1,"createdTime":"0001-01-01T00:00:00Z","updatedTime":"0001-01-01T00:00:00Z","maxVersions":10}}');
});
