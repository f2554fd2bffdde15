/**
 * Wire golden test: the bytes of every Nexus and Keeper route, recorded once and compared on
 * every run, so a refactor that changes what goes on the wire (a status, a header, a field,
 * its order, an error shape) is caught with the route named and a readable diff.
 *
 * A real stack (spike-agent, 3 Keepers, sqlite Nexus; Bootstrap run by the test) is driven in
 * a fixed order with raw HTTP/1.1-over-mTLS requests written byte by byte (no SDK, no HTTP
 * client library): before bootstrap (503s, status, no sharing), after it (operator, bootstrap,
 * secrets, policies, cipher JSON and stream modes, the error answers: wrong method, unknown
 * route/action, bad JSON, oversize, unauthorised identity, not found), the Keeper routes, and
 * a sealed Nexus restored shard by shard. Then every `NexusClient` call is made once and the
 * requests it hands to its dispatcher are recorded too (SDK request bytes, independent of the
 * server's answers). Values that are random or clock-made are normalised by the rules listed
 * in test/helpers/wire-golden.ts (NORMALISATION_RULES, also written into the golden file).
 *
 * Record: `SPIKE_GOLDEN_RECORD=1 node --test dist/test/e2e/wire-golden.test.js` rewrites
 * test/golden/wire.json. Otherwise the run is compared with it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { combineShares, derivePurposeKey, gcmSeal, type Share } from '../../src/crypto/index.js';
import { Stack, TD } from '../helpers/stack.js';
import { GoldenRun, OCTETS } from '../helpers/wire-golden-run.js';
import { NORMALISATION_RULES, compareEntries, goldenPath, readGolden, writeGolden } from '../helpers/wire-golden.js';

const GOLDEN = goldenPath(import.meta.url, 'test/golden/wire.json');
const RECORD = process.env['SPIKE_GOLDEN_RECORD'] === '1';
const APP_ID = `spiffe://${TD}/workload/app`;
/** Bootstrap's verification AAD (a wire constant, spelled out here on purpose). */
const VERIFY_AAD = Buffer.from('spike/bootstrap-verify/v1');
const VERIFY_NONCE_B64 = 'AAECAwQFBgcICQoL';

let stack: Stack;
let run: GoldenRun;
const shares: Share[] = [];
const j = (v: unknown): string => JSON.stringify(v);
const bytes32 = (fill: (i: number) => number): string => j(Array.from({ length: 32 }, (_, i) => fill(i)));

before(async () => {
  stack = await Stack.start({
    bootstrap: false,
    identities: { app: APP_ID, stranger: `spiffe://${TD}/workload/stranger` },
  });
  run = new GoldenRun(stack);
});

after(async () => {
  await run?.close();
  await stack?.stop();
});

test('before bootstrap: status, 503s, no sharing, empty Keeper', async () => {
  await run.call({ name: 'bootstrap.status before bootstrap', as: 'bootstrap', target: '/v1/bootstrap/status', body: '{}' });
  await run.call({ name: 'secrets.list before ready', as: 'pilot', target: '/v1/store/secrets?action=list', body: '{}' });
  await run.call({ name: 'unknown route before ready', as: 'pilot', target: '/v1/nothing', body: '{}' });
  await run.call({ name: 'operator.commitments before bootstrap', as: 'recover', target: '/v1/operator/commitments', body: '{}' });
  await run.call({ name: 'operator.recover before ready', as: 'recover', target: '/v1/operator/recover', body: '{}' });
  await run.call({ name: 'operator.restore before bootstrap', as: 'restore', target: '/v1/operator/restore', body: `{"id":1,"shard":${bytes32((i) => i + 1)}}` });
  await run.call({ name: 'bootstrap.verify before ready', as: 'bootstrap', target: '/v1/bootstrap/verify', body: `{"nonce":"${VERIFY_NONCE_B64}","ciphertext":"AAAA"}` });
  await run.call({ name: 'keeper.shard before bootstrap', as: 'nexus', to: 'keeper-1', target: '/v1/store/shard', body: '{}' });
  const r = await stack.runBootstrap();
  assert.equal(r.code, 0, r.stderr);
  await stack.waitReady();
});

test('operator and bootstrap routes', async () => {
  const rec = await run.callJson({ name: 'operator.recover', as: 'recover', target: '/v1/operator/recover', body: '{}' });
  for (const [id, value] of Object.entries(rec['shards'] as Record<string, number[]>)) {
    shares.push({ id: Number(id), value: Uint8Array.from(value) });
    run.set(`share${id}`, j(value));
  }
  assert.equal(shares.length, 3);
  await run.call({ name: 'operator.recover as superuser', as: 'pilot', target: '/v1/operator/recover', body: '{}' });
  await run.call({ name: 'operator.commitments', as: 'recover', target: '/v1/operator/commitments', body: '{}' });
  await run.call({ name: 'operator.commitments as superuser', as: 'pilot', target: '/v1/operator/commitments', body: '{}' });
  await run.call({ name: 'operator.commitments as stranger', as: 'stranger', target: '/v1/operator/commitments', body: '{}' });
  await run.call({ name: 'operator.restore on a healthy Nexus', as: 'restore', target: '/v1/operator/restore', body: '{"id":2,"shard":{{share2}}}' });
  await run.call({ name: 'operator.restore value over the group order', as: 'restore', target: '/v1/operator/restore', body: `{"id":1,"shard":${bytes32(() => 255)}}` });
  await run.call({ name: 'operator.restore id out of range', as: 'restore', target: '/v1/operator/restore', body: '{"id":4,"shard":{{share1}}}' });
  await run.call({ name: 'operator.restore as superuser', as: 'pilot', target: '/v1/operator/restore', body: '{"id":1,"shard":{{share1}}}' });

  await run.call({ name: 'bootstrap.status', as: 'bootstrap', target: '/v1/bootstrap/status', body: '{}' });
  await run.call({ name: 'bootstrap.status as superuser', as: 'pilot', target: '/v1/bootstrap/status', body: '{}' });
  const root = combineShares(shares.slice(0, 2), 2);
  const key = derivePurposeKey(root, 'bootstrap-verify/v1');
  root.destroy();
  run.set('verifyCt', Buffer.from(gcmSeal(key, Buffer.from(VERIFY_NONCE_B64, 'base64'), Buffer.from('golden verify text'), VERIFY_AAD)).toString('base64'));
  const verify = (name: string, as: string, body: string): Promise<unknown> => run.call({ name, as, target: '/v1/bootstrap/verify', body });
  await verify('bootstrap.verify', 'bootstrap', `{"nonce":"${VERIFY_NONCE_B64}","ciphertext":"{{verifyCt}}"}`);
  await verify('bootstrap.verify wrong ciphertext', 'bootstrap', `{"nonce":"${VERIFY_NONCE_B64}","ciphertext":"AAAAAAAAAAAAAAAAAAAAAAAA"}`);
  await verify('bootstrap.verify short nonce', 'bootstrap', '{"nonce":"AAAA","ciphertext":"AAAA"}');
  await verify('bootstrap.verify as superuser', 'pilot', `{"nonce":"${VERIFY_NONCE_B64}","ciphertext":"{{verifyCt}}"}`);
});

test('secrets routes', async () => {
  const s = (name: string, action: string, body: string, as = 'pilot'): Promise<unknown> =>
    run.call({ name, as, target: action === '' ? '/v1/store/secrets' : `/v1/store/secrets?action=${action}`, body });
  const meta = (name: string, body: string): Promise<unknown> => run.call({ name, as: 'pilot', target: '/v1/store/secrets/metadata?action=get', body });
  await s('secrets.put', '', j({ path: 'golden/a', values: { user: 'alice', pass: 's3cret' } }));
  await s('secrets.put second version', '', j({ path: 'golden/a', values: { user: 'alice', pass: 'changed' } }));
  await s('secrets.put cas mismatch', '', j({ path: 'golden/a', values: { x: 'y' }, cas: 1 }));
  await s('secrets.put additive fields', '', j({ path: 'golden/b', values: { k: 'v' }, cas: 0, maxVersions: 3, customMetadata: { owner: 'team-a' } }));
  await s('secrets.put invalid path', '', j({ path: '/bad//path', values: { k: 'v' } }));
  await s('secrets.put invalid key', '', j({ path: 'golden/c', values: { 'bad key!': 'v' } }));
  await s('secrets.get', 'get', j({ path: 'golden/a' }));
  await s('secrets.get version 1', 'get', j({ path: 'golden/a', version: 1 }));
  await s('secrets.get missing', 'get', j({ path: 'golden/none' }));
  await s('secrets.get unknown field', 'get', j({ path: 'golden/b', extra: 1 }));
  await meta('secrets.metadata', j({ path: 'golden/a' }));
  await meta('secrets.metadata custom', j({ path: 'golden/b' }));
  await meta('secrets.metadata missing', j({ path: 'golden/none' }));
  await s('secrets.delete', 'delete', j({ path: 'golden/a', versions: [1] }));
  await s('secrets.get deleted version', 'get', j({ path: 'golden/a', version: 1 }));
  await meta('secrets.metadata after delete', j({ path: 'golden/a' }));
  await s('secrets.undelete', 'undelete', j({ path: 'golden/a', versions: [1] }));
  await s('secrets.destroy', 'destroy', j({ path: 'golden/a', versions: [1] }));
  await meta('secrets.metadata after destroy', j({ path: 'golden/a' }));
  await s('secrets.delete missing', 'delete', j({ path: 'golden/none', versions: [] }));
  await s('secrets.delete versions null', 'delete', j({ path: 'golden/b', versions: null }));
  await s('secrets.undelete default', 'undelete', j({ path: 'golden/b' }));
  await s('secrets.list', 'list', '{}');

  await run.call({
    name: 'policy.put for app', as: 'pilot', target: '/v1/acl/policy',
    body: j({ name: 'golden-app', spiffeidPattern: '^spiffe://spike\\.ist/workload/app$', pathPattern: '^app/.*$', permissions: ['read', 'write', 'list'] }),
  });
  await s('secrets.put by policy', '', j({ path: 'app/x', values: { k: 'v' } }), 'app');
  await s('secrets.get by policy', 'get', j({ path: 'app/x' }), 'app');
  await s('secrets.get outside policy', 'get', j({ path: 'golden/a' }), 'app');
  await s('secrets.list by policy', 'list', '{}', 'app');
  await s('secrets.get as stranger', 'get', j({ path: 'golden/a' }), 'stranger');
  await s('secrets.list as stranger', 'list', '{}', 'stranger');
  await s('secrets.put as lite', '', j({ path: 'golden/l', values: { k: 'v' } }), 'lite');
});

test('policy routes', async () => {
  const p = (name: string, action: string, body: string, as = 'pilot'): Promise<unknown> =>
    run.call({ name, as, target: action === '' ? '/v1/acl/policy' : `/v1/acl/policy?action=${action}`, body });
  const reader = { name: 'golden-read', spiffeidPattern: '^spiffe://spike\\.ist/workload/reader$', pathPattern: '^golden/.*$', permissions: ['read'] };
  await p('policy.put', '', j(reader));
  await p('policy.put again (upsert)', '', j(reader));
  await p('policy.get', 'get', j({ id: 'golden-read' }));
  await p('policy.list', 'list', '{}');
  await p('policy.list by spiffeidPattern', 'list', j({ spiffeidPattern: reader.spiffeidPattern }));
  await p('policy.list by pathPattern', 'list', j({ pathPattern: '^app/.*$' }));
  await p('policy.get missing', 'get', j({ id: 'golden-none' }));
  await p('policy.put invalid pattern', '', j({ ...reader, name: 'golden-bad', pathPattern: '(' }));
  await p('policy.put invalid permission', '', j({ ...reader, name: 'golden-bad', permissions: ['fly'] }));
  await p('policy.put invalid name', '', j({ ...reader, name: 'bad name!' }));
  await p('policy.put as stranger', '', j(reader), 'stranger');
  await p('policy.list as app', 'list', '{}', 'app');
  await p('policy.delete', 'delete', j({ id: 'golden-read' }));
  await p('policy.delete missing', 'delete', j({ id: 'golden-read' }));
  await p('policy.list after delete', 'list', '{}');
});

test('cipher routes, JSON and stream modes', async () => {
  const enc = await run.callJson({ name: 'cipher.encrypt', as: 'pilot', target: '/v1/cipher/encrypt', body: j({ plaintext: Buffer.from('hello golden').toString('base64') }) });
  run.set('nonce', String(enc['nonce']));
  run.set('ct', String(enc['ciphertext']));
  const tampered = Buffer.from(String(enc['ciphertext']), 'base64');
  tampered[0]! ^= 1;
  run.set('ctTampered', tampered.toString('base64'));
  const c = (name: string, route: 'encrypt' | 'decrypt', body: string, as = 'pilot'): Promise<unknown> =>
    run.call({ name, as, target: `/v1/cipher/${route}`, body });
  await c('cipher.decrypt', 'decrypt', '{"version":1,"nonce":"{{nonce}}","ciphertext":"{{ct}}"}');
  await c('cipher.decrypt tampered', 'decrypt', '{"version":1,"nonce":"{{nonce}}","ciphertext":"{{ctTampered}}"}');
  await c('cipher.decrypt unknown version', 'decrypt', '{"version":2,"nonce":"{{nonce}}","ciphertext":"{{ct}}"}');
  await c('cipher.decrypt short nonce', 'decrypt', '{"version":1,"nonce":"AAAA","ciphertext":"{{ct}}"}');
  await c('cipher.encrypt empty with algorithm', 'encrypt', '{"plaintext":"","algorithm":"AES-GCM"}');
  await c('cipher.encrypt not base64', 'encrypt', '{"plaintext":"%%%"}');
  await c('cipher.encrypt as lite', 'encrypt', j({ plaintext: 'AQID' }), 'lite');
  await c('cipher.encrypt as stranger', 'encrypt', j({ plaintext: 'AQID' }), 'stranger');

  const stream = (name: string, route: 'encrypt' | 'decrypt', o: { bytes?: Buffer; randomOctets?: boolean; chunked?: boolean; declaredLengthOnly?: number; as?: string; contentType?: string }) =>
    run.call({ name, as: o.as ?? 'pilot', target: `/v1/cipher/${route}`, contentType: o.contentType ?? OCTETS, bytes: o.bytes ?? Buffer.alloc(0), randomOctets: o.randomOctets, chunked: o.chunked, declaredLengthOnly: o.declaredLengthOnly });
  const sealed = await stream('cipher.encrypt stream', 'encrypt', { bytes: Buffer.from('hello stream') });
  assert.ok(sealed, 'stream encrypt answered');
  await stream('cipher.decrypt stream', 'decrypt', { bytes: sealed.body, randomOctets: true });
  const flipped = Buffer.from(sealed.body);
  flipped[flipped.length - 1]! ^= 1;
  await stream('cipher.decrypt stream tampered', 'decrypt', { bytes: flipped, randomOctets: true });
  await stream('cipher.encrypt stream chunked', 'encrypt', { bytes: Buffer.from('chunked plaintext'), chunked: true });
  await stream('cipher.encrypt stream empty', 'encrypt', {});
  await stream('cipher.decrypt stream unknown version', 'decrypt', { bytes: Buffer.concat([Buffer.from([2]), Buffer.alloc(40)]) });
  await stream('cipher.decrypt stream empty', 'decrypt', {});
  await stream('cipher.decrypt stream short nonce', 'decrypt', { bytes: Buffer.from([1, 0, 0, 0, 0]) });
  await stream('cipher.decrypt stream shorter than the tag', 'decrypt', { bytes: Buffer.concat([Buffer.from([1]), Buffer.alloc(12 + 5)]) });
  await stream('cipher.encrypt stream as stranger', 'encrypt', { bytes: Buffer.from('x'), as: 'stranger' });
  await stream('cipher.encrypt stream declared over the cap', 'encrypt', { declaredLengthOnly: 64 * 1024 * 1024 + 1 });
  await stream('cipher.encrypt octet-stream with parameters is JSON mode', 'encrypt', { bytes: Buffer.from('raw'), contentType: `${OCTETS}; charset=binary` });
});

test('error answers common to every route', async () => {
  const e = (name: string, target: string, body: string, extra: { method?: string; contentType?: string | null } = {}): Promise<unknown> =>
    run.call({ name, as: 'pilot', target, body, ...extra });
  await e('wrong method GET', '/v1/store/secrets?action=list', '', { method: 'GET', contentType: null });
  await e('wrong method PUT', '/v1/acl/policy', '{}', { method: 'PUT' });
  await e('unknown action', '/v1/store/secrets?action=nope', '{}');
  await e('repeated action', '/v1/store/secrets?action=list&action=list', '{}');
  await e('unknown path', '/v1/store/nothing', '{}');
  await e('trailing slash', '/v1/store/secrets/?action=list', '{}');
  await e('encoded slash', '/v1/store%2Fsecrets?action=list', '{}');
  await e('bad JSON', '/v1/store/secrets?action=get', '{"path":');
  await e('duplicate member', '/v1/store/secrets?action=get', '{"path":"golden/a","path":"golden/b"}');
  await e('body not an object', '/v1/store/secrets?action=get', '[]');
  await e('empty body', '/v1/store/secrets?action=list', '');
  await e('wrong field type', '/v1/store/secrets?action=get', '{"path":7}');
  await e('non-empty body where {} is expected', '/v1/store/secrets?action=list', '{"x":1}');
  await e('no content type', '/v1/store/secrets?action=list', '{}', { contentType: null });
  await run.call({ name: 'oversize body', as: 'pilot', target: '/v1/store/secrets', bytes: Buffer.alloc(1024 * 1024 + 1, 0x20) });
});

test('Keeper routes', async () => {
  const held = await run.callJson({ name: 'keeper.shard', as: 'nexus', to: 'keeper-1', target: '/v1/store/shard', body: '{}' });
  run.set('k1Shard', j(held['shard']));
  run.set('k1Commitments', String(held['commitments']));
  const k = (name: string, as: string, target: string, body: string, extra: { method?: string } = {}): Promise<unknown> =>
    run.call({ name, as, to: 'keeper-1', target, body, ...extra });
  await k('keeper.shard as bootstrap', 'bootstrap', '/v1/store/shard', '{}');
  await k('keeper.shard as superuser (refused in the handshake)', 'pilot', '/v1/store/shard', '{}');
  await k('keeper.contribute same share from nexus', 'nexus', '/v1/store/contribute', '{"shard":{{k1Shard}},"id":1,"epoch":1,"commitments":"{{k1Commitments}}"}');
  await k('keeper.contribute other share from bootstrap', 'bootstrap', '/v1/store/contribute', '{"shard":{{share2}}}');
  await k('keeper.contribute epoch 2 from bootstrap', 'bootstrap', '/v1/store/contribute', '{"shard":{{k1Shard}},"epoch":2}');
  await k('keeper.contribute unverified share', 'nexus', '/v1/store/contribute', '{"shard":{{share2}},"id":1,"epoch":1,"commitments":"{{k1Commitments}}"}');
  await k('keeper.contribute zero share', 'nexus', '/v1/store/contribute', `{"shard":${bytes32(() => 0)}}`);
  await k('keeper.contribute bad JSON', 'nexus', '/v1/store/contribute', '{"shard":');
  await k('keeper.contribute epoch 0', 'nexus', '/v1/store/contribute', '{"shard":{{k1Shard}},"epoch":0}');
  await k('keeper wrong method', 'nexus', '/v1/store/shard', '{}', { method: 'GET' });
  await k('keeper unknown path', 'nexus', '/v1/store/secrets', '{}');
  await run.call({ name: 'keeper oversize body', as: 'nexus', to: 'keeper-1', target: '/v1/store/contribute', bytes: Buffer.alloc(8 * 1024 + 1, 0x20) });
});

test('SDK requests (what NexusClient hands to its dispatcher)', async () => {
  const pilot = await run.sdkClient('pilot');
  await run.sdkCall('putSecret', () => pilot.putSecret('sdk/a', { k: 'v' }));
  await run.sdkCall('putSecret with cas, maxVersions, customMetadata', () => pilot.putSecret('sdk/a', { k: 'v2' }, { cas: 1, maxVersions: 5, customMetadata: { owner: 'sdk' } }));
  await run.sdkCall('getSecret', () => pilot.getSecret('sdk/a'));
  await run.sdkCall('getSecret version', () => pilot.getSecret('sdk/a', { version: 1 }));
  await run.sdkCall('getSecretMetadata', () => pilot.getSecretMetadata('sdk/a'));
  await run.sdkCall('getSecretMetadata version', () => pilot.getSecretMetadata('sdk/a', { version: 2 }));
  await run.sdkCall('deleteSecret', () => pilot.deleteSecret('sdk/a', [1]));
  await run.sdkCall('undeleteSecret', () => pilot.undeleteSecret('sdk/a', [1]));
  await run.sdkCall('destroySecret', () => pilot.destroySecret('sdk/a', [1]));
  await run.sdkCall('deleteSecret current', () => pilot.deleteSecret('sdk/a'));
  await run.sdkCall('listSecrets', () => pilot.listSecrets());
  const spec = { name: 'sdk-pol', spiffeIdPattern: '^spiffe://spike\\.ist/workload/sdk$', pathPattern: '^sdk/.*$', permissions: ['read', 'list'] as const };
  await run.sdkCall('putPolicy', () => pilot.putPolicy({ ...spec, permissions: [...spec.permissions] }));
  await run.sdkCall('getPolicy', () => pilot.getPolicy('sdk-pol'));
  await run.sdkCall('listPolicies', () => pilot.listPolicies());
  await run.sdkCall('listPolicies by spiffeIdPattern', () => pilot.listPolicies({ spiffeIdPattern: spec.spiffeIdPattern }));
  await run.sdkCall('listPolicies by pathPattern', () => pilot.listPolicies({ pathPattern: spec.pathPattern }));
  await run.sdkCall('deletePolicy', () => pilot.deletePolicy('sdk-pol'));
  const ct = await run.sdkCall('encrypt', () => pilot.encrypt(Buffer.from('sdk text')));
  await run.sdkCall('encrypt with algorithm', () => pilot.encrypt(Buffer.from('sdk text'), { algorithm: 'AES-GCM' }));
  const back = await run.sdkCall('decrypt', () => pilot.decrypt(ct));
  assert.equal(Buffer.from(back).toString(), 'sdk text');
  const drain = async (r: AsyncIterable<unknown>): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const part of r) parts.push(part as Buffer);
    return Buffer.concat(parts);
  };
  const sealed = await run.sdkCall('encryptStream', async () => drain(await pilot.encryptStream(Buffer.from('sdk stream'))));
  const opened = await run.sdkCall('decryptStream', async () => drain(await pilot.decryptStream(sealed)));
  assert.equal(opened.toString(), 'sdk stream');
  await run.sdkCall('getCommitments', () => pilot.getCommitments());
  const recover = await run.sdkClient('recover');
  const got = await run.sdkCall('recover', () => recover.recover());
  for (const s of got) s.value.fill(0);
  const restore = await run.sdkClient('restore');
  await run.sdkCall('restore', () => restore.restore(shares[0]!));
  await run.sdkCall('verifyShard', () => restore.verifyShard(shares[0]!));
});

test('a sealed Nexus restored shard by shard', async () => {
  await stack.killNexus();
  for (let i = 1; i <= 3; i++) await stack.killKeeper(i);
  for (let i = 1; i <= 3; i++) await stack.startKeeper(i);
  await stack.startNexus();
  const r = (name: string, body: string): Promise<unknown> => run.call({ name, as: 'restore', target: '/v1/operator/restore', body });
  await run.call({ name: 'secrets.list while sealed', as: 'pilot', target: '/v1/store/secrets?action=list', body: '{}' });
  await run.call({ name: 'bootstrap.status while sealed', as: 'bootstrap', target: '/v1/bootstrap/status', body: '{}' });
  await run.call({ name: 'operator.commitments while sealed', as: 'restore', target: '/v1/operator/commitments', body: '{}' });
  await run.call({ name: 'operator.recover while sealed', as: 'recover', target: '/v1/operator/recover', body: '{}' });
  await run.call({ name: 'keeper.shard of a restarted Keeper', as: 'nexus', to: 'keeper-1', target: '/v1/store/shard', body: '{}' });
  await r('operator.restore 1 of 2', '{"id":1,"shard":{{share1}}}');
  await r('operator.restore the same shard again', '{"id":1,"shard":{{share1}}}');
  await r('operator.restore shard under the wrong id', '{"id":3,"shard":{{share1}}}');
  await r('operator.restore stale epoch', '{"id":2,"shard":{{share2}},"epoch":7}');
  await r('operator.restore 2 of 2', '{"id":2,"shard":{{share2}}}');
  await stack.waitReady();
  await run.call({ name: 'secrets.get after restore', as: 'pilot', target: '/v1/store/secrets?action=get', body: j({ path: 'app/x' }) });
});

test('golden: the wire matches test/golden/wire.json', () => {
  const now = {
    about: 'Recorded by test/e2e/wire-golden.test.ts (SPIKE_GOLDEN_RECORD=1 to re-record). Raw exchanges in run order, then the SDK requests.',
    rules: NORMALISATION_RULES,
    exchanges: run.exchanges,
    sdk: run.sdk,
  };
  if (RECORD) {
    writeGolden(GOLDEN, now);
    console.log(`recorded ${now.exchanges.length} exchanges and ${now.sdk.length} SDK calls in ${GOLDEN}`);
    return;
  }
  assert.ok(fs.existsSync(GOLDEN), `no golden file at ${GOLDEN}: record it with SPIKE_GOLDEN_RECORD=1`);
  const was = readGolden(GOLDEN);
  const reports = [
    ...(JSON.stringify(was.rules) === JSON.stringify(now.rules) ? [] : ['the normalisation rules changed since the recording: re-record']),
    ...compareEntries('exchange', was.exchanges, now.exchanges, (e) => `[${e.as} → ${e.to}: ${e.request.line}] `),
    ...compareEntries('SDK call', was.sdk, now.sdk),
  ];
  assert.equal(reports.length, 0, `${reports.length} wire difference(s):\n\n${reports.join('\n\n')}`);
});
