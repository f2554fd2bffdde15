/**
 * NexusClient over real mTLS (src/spiffe/tls/, test PKI): what goes on the wire for each
 * route of SPIKE's v1 API, how answers map to errors, fail-over across several
 * URLs (issue 8: idempotent calls only; a write is never re-sent once it may have arrived),
 * and the client-side server check (TLS-21).
 *
 * The servers here are scripted endpoints that record requests and send canned answers: they
 * test the client's own behaviour. End-to-end behaviour against a real Nexus lives in
 * test/e2e/.
 */
import 'reflect-metadata';
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createMtlsDispatcher, createMtlsServer, type MtlsServer } from '../spiffe/tls/index.js';
import { authorizeIf } from '../spiffe/authorize.js';
import { StaticX509Source } from '../spiffe/source.js';
import { createLogger } from '../lib/log.js';
import { bundleSetOf, createCa, makeSvid, type TestCa } from '../../test/helpers/pki.js';
import { NexusClient } from './client.js';
import { NexusApiError, SdkUsageError } from './errors.js';
import { RootKey } from '../crypto/rootkey.js';
import { splitSecret } from '../crypto/shamir.js';

const TD = 'td1.test';
const ENV = { SPIKE_TRUST_ROOT_NEXUS: TD, SPIKE_TRUST_ROOT_PILOT: TD };

interface Seen {
  method: string;
  url: string;
  contentType: string;
  body: Buffer;
}

type Script = (seen: Seen, res: ServerResponse, req: IncomingMessage) => void;

interface Stub {
  server: MtlsServer;
  url: string;
  seen: Seen[];
  script: Script;
}

let ca: TestCa;
let clientSource: StaticX509Source;
const stubs: Stub[] = [];
const clients: NexusClient[] = [];

function json(res: ServerResponse, status: number, body: unknown): void {
  const out = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
  res.end(out);
}

async function stub(spiffeId = `spiffe://${TD}/spike/nexus`, script: Script = (_s, res) => json(res, 200, {})): Promise<Stub> {
  const source = new StaticX509Source(await makeSvid(ca, spiffeId), bundleSetOf(ca));
  const s: Stub = { server: undefined as unknown as MtlsServer, url: '', seen: [], script };
  s.server = createMtlsServer({
    source,
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ component: 'sdk-test', level: 'silent' }),
    handler: (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const seen = { method: req.method ?? '', url: req.url ?? '', contentType: String(req.headers['content-type'] ?? ''), body: Buffer.concat(chunks) };
        s.seen.push(seen);
        s.script(seen, res, req);
      });
    },
  });
  await s.server.listen();
  s.url = `https://127.0.0.1:${s.server.port}`;
  stubs.push(s);
  return s;
}

async function client(urls: string[]): Promise<NexusClient> {
  const c = await NexusClient.connect({ urls, source: clientSource, env: ENV, timeoutMs: 5_000, retryUnavailableMs: 0 }); // fail-over alone; retries: unavailable-retry.test.ts
  clients.push(c);
  return c;
}

/** A port with nothing listening (connection refused). */
async function deadPort(): Promise<string> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `https://127.0.0.1:${port}`;
}

const bodyOf = (s: Seen): unknown => JSON.parse(s.body.toString('utf8'));

before(async () => {
  ca = await createCa(TD);
  clientSource = new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/spike/pilot/role/superuser`), bundleSetOf(ca));
});

after(async () => {
  for (const c of clients) await c.close();
  for (const s of stubs) await s.server.close();
});

describe('requests are exactly SPIKE v1', () => {
  test('every route: POST, path, action query, JSON field names', async () => {
    const answers: Record<string, unknown> = {
      '/v1/store/secrets?action=get': JSON.parse('{"data":{"username":"admin","__proto__":"x"}}') as unknown,
      '/v1/store/secrets?action=list': { keys: ['a/b', 'c'] },
      '/v1/store/secrets/metadata?action=get': {
        versions: { '1': { createdTime: '2026-07-25T10:00:00Z', version: 1, deletedTime: null } },
        metadata: { currentVersion: 1, oldestVersion: 1, createdTime: '2026-07-25T10:00:00Z', updatedTime: '2026-07-25T10:00:00Z', maxVersions: 10 },
      },
      '/v1/acl/policy?action=get': {
        id: '',
        name: 'db-read',
        spiffiedPattern: '^spiffe://td1\\.test/app$',
        pathPattern: '^db/.*$',
        permissions: ['read'],
        createdAt: '2026-07-25T10:00:00Z',
        updatedAt: '2026-07-25T10:00:00Z',
      },
      '/v1/acl/policy?action=list': { policies: [{ id: '', name: 'db-read' }] },
      '/v1/cipher/encrypt': { version: 1, nonce: Buffer.alloc(12, 1).toString('base64'), ciphertext: Buffer.from('ct').toString('base64') },
      '/v1/cipher/decrypt': { plaintext: Buffer.from('hello').toString('base64') },
      '/v1/operator/restore': { collected: 1, remaining: 1, restored: false },
    };
    const s = await stub(undefined, (seen, res) => json(res, 200, answers[seen.url] ?? {}));
    const c = await client([s.url]);

    await c.putSecret('a/b', { username: 'admin' });
    await c.putSecret('a/b', { k: 'v' }, { cas: 3, maxVersions: 5, customMetadata: { owner: 'ops' } });
    const got = await c.getSecret('a/b', { version: 2 });
    assert.equal(got['username'], 'admin');
    assert.equal(Object.getPrototypeOf(got), null, 'null-prototype map');
    assert.equal(got['__proto__'], 'x', '__proto__ is an ordinary key');
    await c.deleteSecret('a/b', [0, 1]);
    await c.undeleteSecret('a/b');
    await c.destroySecret('a/b', [1]);
    assert.deepEqual(await c.listSecrets(), ['a/b', 'c']);
    const md = await c.getSecretMetadata('a/b');
    assert.equal(md.metadata.maxVersions, 10);
    assert.equal(md.versions['1']!.deletedTime, null);
    await c.putPolicy({ name: 'db-read', spiffeIdPattern: '^spiffe://td1\\.test/app$', pathPattern: '^db/.*$', permissions: ['read'] });
    const p = await c.getPolicy('db-read');
    assert.equal(p.spiffeIdPattern, '^spiffe://td1\\.test/app$');
    assert.deepEqual(await c.listPolicies({ pathPattern: '^db/.*$' }), [{ id: '', name: 'db-read' }]);
    await c.deletePolicy('db-read');
    const ct = await c.encrypt(Buffer.from('hello'));
    assert.equal(ct.version, 1);
    assert.equal(ct.nonce.length, 12);
    assert.equal(Buffer.from(await c.decrypt(ct)).toString(), 'hello');
    const value = new Uint8Array(32).map((_, i) => i + 1);
    assert.deepEqual(await c.restore({ id: 2, value }), { collected: 1, remaining: 1, restored: false });

    const wire = s.seen.map((x) => [x.method, x.url, x.contentType.split(';')[0], bodyOf(x)]);
    assert.deepEqual(wire, [
      ['POST', '/v1/store/secrets', 'application/json', { path: 'a/b', values: { username: 'admin' } }],
      ['POST', '/v1/store/secrets', 'application/json', { path: 'a/b', values: { k: 'v' }, cas: 3, maxVersions: 5, customMetadata: { owner: 'ops' } }],
      ['POST', '/v1/store/secrets?action=get', 'application/json', { path: 'a/b', version: 2 }],
      ['POST', '/v1/store/secrets?action=delete', 'application/json', { path: 'a/b', versions: [0, 1] }],
      ['POST', '/v1/store/secrets?action=undelete', 'application/json', { path: 'a/b', versions: [] }],
      ['POST', '/v1/store/secrets?action=destroy', 'application/json', { path: 'a/b', versions: [1] }],
      ['POST', '/v1/store/secrets?action=list', 'application/json', {}],
      ['POST', '/v1/store/secrets/metadata?action=get', 'application/json', { path: 'a/b' }],
      ['POST', '/v1/acl/policy', 'application/json', { name: 'db-read', spiffeidPattern: '^spiffe://td1\\.test/app$', pathPattern: '^db/.*$', permissions: ['read'] }],
      ['POST', '/v1/acl/policy?action=get', 'application/json', { id: 'db-read' }],
      ['POST', '/v1/acl/policy?action=list', 'application/json', { spiffeidPattern: '', pathPattern: '^db/.*$' }],
      ['POST', '/v1/acl/policy?action=delete', 'application/json', { id: 'db-read' }],
      ['POST', '/v1/cipher/encrypt', 'application/json', { plaintext: Buffer.from('hello').toString('base64') }],
      ['POST', '/v1/cipher/decrypt', 'application/json', { version: 1, nonce: Buffer.alloc(12, 1).toString('base64'), ciphertext: Buffer.from('ct').toString('base64') }],
      ['POST', '/v1/operator/restore', 'application/json', { id: 2, shard: Array.from(value) }],
    ]);
    // The restore body is Go's compact form, byte for byte.
    assert.equal(s.seen.at(-1)!.body.toString(), `{"id":2,"shard":[${Array.from(value).join(',')}]}`);
  });

  test('recover: shard arrays become Uint8Arrays; an all-zero or short shard is refused', async () => {
    const good = Array.from({ length: 32 }, (_, i) => i + 100);
    let body = `{"shards":{"2":[${good.join(',')}],"1":[${good.map((x) => 255 - x).join(',')}]}}`;
    const s = await stub(undefined, (_seen, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
    const c = await client([s.url]);
    const shares = await c.recover();
    assert.deepEqual(shares.map((x) => x.id), [1, 2]);
    assert.deepEqual([...shares[1]!.value], good);
    body = `{"shards":{"1":[${Array(32).fill(0).join(',')}]}}`;
    await assert.rejects(c.recover(), { code: 'data_unmarshal_failure' });
    body = `{"shards":{"1":[${Array(31).fill(1).join(',')}]}}`;
    await assert.rejects(c.recover(), { code: 'data_unmarshal_failure' });
    body = '{"shards":null,"err":"api_internal_error"}';
    await assert.rejects(c.recover(), { code: 'api_internal_error' });
  });

  test('commitments route: {"commitments": base64, threshold, shares, epoch}', async () => {
    const commitments = Buffer.concat([Buffer.from([1]), Buffer.alloc(33, 2)]);
    const s = await stub(undefined, (_seen, res) => json(res, 200, { commitments: commitments.toString('base64'), threshold: 2, shares: 3, epoch: 1 }));
    const c = await client([s.url]);
    const info = await c.getCommitments();
    assert.deepEqual(Buffer.from(info.commitments), commitments);
    assert.deepEqual([info.threshold, info.shares, info.epoch], [2, 3, 1]);
    assert.equal(s.seen[0]!.url, '/v1/operator/commitments');
  });

  test('stream mode: octet-stream both ways, body passed through', async () => {
    const s = await stub(undefined, (seen, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.concat([Buffer.from([1]), seen.body]));
    });
    const c = await client([s.url]);
    const out = await c.encryptStream(Readable.from([Buffer.from('abc'), Buffer.from('def')]));
    const chunks: Buffer[] = [];
    for await (const ch of out) chunks.push(ch as Buffer);
    assert.deepEqual(Buffer.concat(chunks), Buffer.from('\x01abcdef', 'latin1'));
    assert.equal(s.seen[0]!.contentType, 'application/octet-stream');
    assert.equal(s.seen[0]!.url, '/v1/cipher/encrypt');
  });
});

test('verifyShard: checks a share against the served Feldman commitments locally (D6), submits nothing', async () => {
  const key = RootKey.generate();
  const split = splitSecret(key, 2, 3);
  const other = splitSecret(RootKey.generate(), 2, 3);
  const s = await stub(undefined, (_seen, res) =>
    json(res, 200, { commitments: Buffer.from(split.commitments.toBytes()).toString('base64'), threshold: 2, shares: 3, epoch: 1 }),
  );
  const c = await client([s.url]);
  for (const sh of split.shares) assert.equal((await c.verifyShard({ id: sh.id, value: sh.value })).ok, true);
  assert.equal((await c.verifyShard({ id: 1, value: other.shares[0]!.value })).ok, false, 'a shard of another key');
  assert.equal((await c.verifyShard({ id: 2, value: split.shares[0]!.value })).ok, false, 'SSS-09: right value, wrong id');
  const flipped = Uint8Array.from(split.shares[1]!.value);
  flipped[31]! ^= 1;
  assert.equal((await c.verifyShard({ id: 2, value: flipped })).ok, false, 'one bit flipped');
  assert.ok(s.seen.every((x) => x.url === '/v1/operator/commitments' && x.body.toString() === '{}'), 'only the public commitments were fetched');
});

describe('answers → errors', () => {
  test('status codes map to SDK codes; the body err is kept as wireErr; nothing else is', async () => {
    let next: { status: number; body: string; type?: string } = { status: 200, body: '{}' };
    const s = await stub(undefined, (_seen, res) => {
      res.writeHead(next.status, { 'content-type': next.type ?? 'application/json' });
      res.end(next.body);
    });
    const c = await client([s.url]);
    const cases: [number, string, string, string | undefined][] = [
      [400, '{"err":"invalid_path"}', 'api_bad_request', 'invalid_path'],
      [401, '{"err":"access_unauthorized"}', 'access_unauthorized', 'access_unauthorized'],
      [404, '{"data":null,"err":"api_not_found"}', 'api_not_found', 'api_not_found'],
      [409, '{"err":"api_conflict"}', 'api_conflict', 'api_conflict'],
      [503, '{"err":"state_not_ready"}', 'state_not_ready', 'state_not_ready'],
      [500, '{"err":"api_internal_error"}', 'net_peer_connection', 'api_internal_error'],
      [400, 'not json at all <b>', 'api_bad_request', undefined],
      [200, '{"err":"api_not_found"}', 'api_not_found', 'api_not_found'],
      [200, '{"data":{"k":1}}', 'data_unmarshal_failure', undefined],
      [200, '[1,2]', 'data_unmarshal_failure', undefined],
      [200, '{"data":', 'data_unmarshal_failure', undefined],
    ];
    for (const [status, body, code, wireErr] of cases) {
      next = { status, body };
      await assert.rejects(c.getSecret('a/b'), (e: unknown) => {
        assert.ok(e instanceof NexusApiError, body);
        assert.equal(e.code, code, `${status} ${body}`);
        assert.equal(e.wireErr, wireErr, `${status} ${body}`);
        assert.equal(e.status, status);
        assert.ok(!e.message.includes('a/b'), 'no path in messages');
        return true;
      });
    }
    next = { status: 400, body: 'decryption failed\n', type: 'text/plain; charset=utf-8' };
    await assert.rejects(c.decryptStream(Buffer.from([1, 2, 3])), (e: unknown) => e instanceof NexusApiError && e.code === 'api_bad_request' && e.wireErr === 'decryption_failed');
  });

  test('a short printable message in an error body is kept as detail; anything else is dropped', async () => {
    let body = '';
    const s = await stub(undefined, (_seen, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(body);
    });
    const c = await client([s.url]);
    const cases: [unknown, string | undefined][] = [
      ['request body too large', 'request body too large'],
      ['x'.repeat(200), 'x'.repeat(200)],
      ['x'.repeat(201), undefined],
      ['line\nbreak', undefined],
      ['\u001b[31mred', undefined],
      ['caf\u00e9', undefined],
      ['', undefined],
      [42, undefined],
    ];
    for (const [message, detail] of cases) {
      body = JSON.stringify({ err: 'api_bad_request', message });
      await assert.rejects(c.getSecret('a/b'), (e: unknown) => e instanceof NexusApiError && e.detail === detail && e.code === 'api_bad_request');
    }
  });

  test('a response body above the cap is refused', async () => {
    const s = await stub(undefined, (_seen, res) => json(res, 200, { keys: Array.from({ length: 5000 }, (_, i) => `path/${i}`) }));
    const dispatcher = createMtlsDispatcher({ source: clientSource, authorizeServer: authorizeIf((id) => id.toString() === `spiffe://${TD}/spike/nexus`) });
    const c = NexusClient.create({ urls: [s.url], dispatcher, maxResponseBytes: 1024 });
    clients.push(c);
    await assert.rejects(c.listSecrets(), { code: 'net_reading_response_body' });
  });
});

describe('fail-over across several Nexus URLs (issue 8)', () => {
  test('connection refused: reads AND writes move on (nothing was sent)', async () => {
    const dead = await deadPort();
    const b = await stub();
    const c = await client([dead, b.url]);
    await c.putSecret('x', { k: 'v' });
    await c.getSecret('x').catch(() => undefined);
    assert.equal(b.seen.length, 2);
    assert.deepEqual(c.urls, [dead, b.url]);
  });

  test('503 from the first instance: a read moves on; a write, with or without cas, is not re-sent', async () => {
    const a = await stub(undefined, (_s, res) => json(res, 503, { err: 'state_not_ready' }));
    const b = await stub(undefined, (seen, res) => json(res, 200, seen.url.includes('get') ? { data: { k: 'v' } } : {}));
    const reads = await client([a.url, b.url]);
    assert.deepEqual({ ...(await reads.getSecret('x')) }, { k: 'v' });
    const writes = await client([a.url, b.url]);
    await assert.rejects(writes.putSecret('x', { k: 'v' }), { code: 'state_not_ready' });
    assert.equal(b.seen.filter((s) => s.url === '/v1/store/secrets').length, 0, 'write never reached B');
    const casWrites = await client([a.url, b.url]);
    await assert.rejects(casWrites.putSecret('x', { k: 'v' }, { cas: 1 }), { code: 'state_not_ready' });
    assert.equal(b.seen.filter((s) => s.url === '/v1/store/secrets').length, 0, 'a cas write is not re-sent either (its 409 would hide "maybe applied")');
    await writes.putSecret('x', { k: 'v' }, { cas: 1 }); // A is cooling down: the next call goes to B first
    assert.equal(b.seen.filter((s) => s.url === '/v1/store/secrets').length, 1);
  });

  test('connection dropped after the request arrived: read retried elsewhere, write never re-sent', async () => {
    const a = await stub(undefined, (_s, _res, req) => req.socket.destroy());
    const b = await stub(undefined, (seen, res) => json(res, 200, seen.url.includes('get') ? { data: {} } : {}));
    const c1 = await client([a.url, b.url]);
    await c1.getSecret('x');
    const c2 = await client([a.url, b.url]);
    await assert.rejects(c2.putSecret('x', { k: 'v' }), { code: 'net_peer_connection' });
    const c3 = await client([a.url, b.url]); // c2 now tries B first (A is cooling down)
    await assert.rejects(c3.restore({ id: 1, value: new Uint8Array(32).fill(9) }), { code: 'net_peer_connection' });
    assert.equal(a.seen.filter((s) => !s.url.includes('get')).length, 2, 'A received both writes');
    assert.equal(b.seen.filter((s) => !s.url.includes('get')).length, 0, 'B received no write');
  });

  test('a plain write moves on after 503 outcome not_applied, never after outcome unknown; the failing instance is tried last', async () => {
    const a = await stub(undefined, (_s, res) => json(res, 503, { err: 'state_not_ready', message: 'store unavailable: database timed out', outcome: 'not_applied' }));
    const u = await stub(undefined, (_s, res) => json(res, 503, { err: 'state_not_ready', outcome: 'unknown' }));
    const b = await stub();
    const c = await client([a.url, b.url]);
    await c.putSecret('x', { k: 'v' });
    await c.putSecret('y', { k: 'v' }); // A is cooling down: B first, A not asked again
    assert.deepEqual([a.seen.length, b.seen.length], [1, 2]);
    const c2 = await client([u.url, b.url]);
    await assert.rejects(c2.putSecret('x', { k: 'v' }), { code: 'state_not_ready', outcome: 'unknown' });
    assert.equal(b.seen.length, 2, 'an unknown outcome is never re-sent');
    const c3 = await client([a.url]);
    await assert.rejects(c3.putSecret('z', { k: 'v' }), { code: 'state_not_ready', outcome: 'not_applied' });
  });

  test('the instance that answered is tried first next time', async () => {
    const dead = await deadPort();
    const b = await stub(undefined, (_s, res) => json(res, 200, { keys: [] }));
    const c = await client([dead, b.url]);
    for (let i = 0; i < 5; i++) await c.listSecrets();
    assert.equal(b.seen.length, 5);
  });
});

describe('server identity (TLS-21)', () => {
  test('TLS-21: a server with a valid SVID of the wrong identity gets no request byte, and no fail-over hides it', async () => {
    const wrong = await stub(`spiffe://${TD}/app/workload`);
    const good = await stub();
    const c = await client([wrong.url, good.url]);
    await assert.rejects(c.putSecret('a/b', { password: 's3cret' }), { code: 'tls_peer_rejected' });
    await assert.rejects(c.getSecret('a/b'), { code: 'tls_peer_rejected' });
    assert.equal(wrong.seen.length, 0, 'no request reached the wrong server');
    assert.equal(good.seen.length, 0);
  });

  test('look-alike Nexus IDs are not Nexus', async () => {
    const lookAlike = await stub(`spiffe://${TD}/spike/nexusX`);
    const c = await client([lookAlike.url]);
    await assert.rejects(c.listSecrets(), { code: 'tls_peer_rejected' });
    assert.equal(lookAlike.seen.length, 0);
  });
});

test('arguments are checked before anything is sent; close() is idempotent', async () => {
  const s = await stub();
  const c = await client([s.url]);
  await assert.rejects(c.getSecret('a', { version: -1 }), { code: 'sdk_bad_argument' });
  await assert.rejects(c.deleteSecret('a', [1.5]), { code: 'sdk_bad_argument' });
  await assert.rejects(c.putSecret('a', { k: 1 as unknown as string }), { code: 'sdk_bad_argument' });
  await assert.rejects(c.restore({ id: 0, value: new Uint8Array(32).fill(1) }), { code: 'sdk_bad_shard' });
  await assert.rejects(c.restore({ id: 1, value: new Uint8Array(32) }), { code: 'sdk_bad_shard' });
  await assert.rejects(c.putPolicy({ name: 'n', spiffeIdPattern: 'x', pathPattern: 'y', permissions: ['admin' as 'read'] }), { code: 'sdk_bad_argument' });
  assert.equal(s.seen.length, 0);
  await c.close();
  await c.close();
  // a call on a closed client is the caller's mistake: nothing is sent
  await assert.rejects(c.listSecrets(), (e: unknown) => e instanceof SdkUsageError && e.code === 'sdk_closed');
  assert.equal(s.seen.length, 0);
});
