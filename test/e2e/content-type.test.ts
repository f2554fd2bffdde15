/**
 * Content-Type handling against the real spike-nexus over real mTLS (SEC-17, CIP-11):
 * - a JSON request that declares a charset other than UTF-8 is refused with 415
 *   (`{"err":"api_bad_request","message":"request body must be UTF-8 JSON"}`) and nothing is
 *   stored; a UTF-8 BOM is a 400; `text/plain` (or no Content-Type at all) is still read as JSON,
 *   as SPIKE does (documented in docs/design/hostile-cases.md: generic HTTP clients send
 *   `text/plain` for a string body, and SPIKE never checked the header);
 * - the cipher stream mode is chosen by SPIKE's exact header text, as the spec (api.md §7)
 *   states it: `application/octet-stream; charset=binary` is JSON mode. The catalogue's CIP-11
 *   asks for media-type parsing; the spec outranks the catalogue, and a client written against
 *   the spec keeps working.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { Stack } from '../helpers/stack.js';
import { SpiffeId } from '../../src/spiffe/id.js';
import { WorkloadX509Source, authorizeIf, createMtlsDispatcher } from '../../src/spiffe/index.js';
import { type RawClient, rawClient } from './secrets-helpers.js';

let stack: Stack;
let pilot: RawClient;

before(async () => {
  stack = await Stack.start({ backend: 'memory', identities: { w: 'spiffe://spike.ist/workload/ct' } });
  pilot = await rawClient(stack, 'pilot');
});

after(async () => {
  await pilot?.close();
  await stack?.stop();
});

const PUT = '/v1/store/secrets';

test('SEC-17: charset other than UTF-8 → 415 with the error shape, nothing stored; BOM → 400; text/plain still read as JSON', async () => {
  const body = (p: string): string => JSON.stringify({ path: p, values: { k: 'v' } });
  for (const ct of ['application/json; charset=utf-16', 'application/json; charset="UTF-16LE"', 'application/json;charset=iso-8859-1']) {
    const r = await pilot.post(PUT, body('ct/refused'), { headers: { 'content-type': ct } });
    assert.equal(r.status, 415, ct);
    assert.deepEqual(r.json, { err: 'api_bad_request', message: 'request body must be UTF-8 JSON' }, ct);
  }
  // The policy route's error shape is kept too (its zero-valued answer plus err).
  const pg = await pilot.post('/v1/acl/policy?action=get', '{"id":"x"}', { headers: { 'content-type': 'application/json; charset=utf-16' } });
  assert.equal(pg.status, 415);
  assert.equal((pg.json as { err?: string }).err, 'api_bad_request');
  assert.equal((pg.json as { spiffiedPattern?: string }).spiffiedPattern, '');
  // An unauthorised caller learns nothing about the body rules: 401 first (D10).
  const w = await rawClient(stack, 'w');
  try {
    const r = await w.post(PUT, body('ct/w'), { headers: { 'content-type': 'application/json; charset=utf-16' } });
    assert.equal(r.status, 401);
  } finally {
    await w.close();
  }
  const bom = await pilot.post(PUT, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body('ct/bom'))]));
  assert.equal(bom.status, 400);
  assert.equal((bom.json as { err?: string }).err, 'api_bad_request');
  for (const [p, ct] of [['ct/utf8', 'application/json; charset=UTF-8'], ['ct/plain', 'text/plain;charset=UTF-8']] as const) {
    assert.equal((await pilot.post(PUT, body(p), { headers: { 'content-type': ct } })).status, 200, ct);
  }
  const list = await pilot.post(`${PUT}?action=list`, {});
  assert.deepEqual(list.json, { keys: ['ct/plain', 'ct/utf8'] });
});

test('CIP-11 (spec §7 wins): application/octet-stream with parameters is JSON mode, as SPIKE decides it; the exact type is the stream mode', async () => {
  const pt = Buffer.from('content-type-canary');
  const source = await WorkloadX509Source.open({ endpoint: stack.socket('pilot'), timeoutMs: 15_000 });
  const nexusId = SpiffeId.parse('spiffe://spike.ist/spike/nexus');
  const dispatcher = createMtlsDispatcher({ source, authorizeServer: authorizeIf((id) => id.equals(nexusId)) });
  try {
    const post = async (ct: string, body: Buffer): Promise<{ status: number; type: unknown; bytes: Buffer }> => {
      const r = await request(stack.nexusUrl + '/v1/cipher/encrypt', { method: 'POST', body, headers: { 'content-type': ct }, dispatcher });
      return { status: r.statusCode, type: r.headers['content-type'], bytes: Buffer.from(await r.body.arrayBuffer()) };
    };
    const stream = await post('application/octet-stream', pt);
    assert.equal(stream.status, 200);
    assert.equal(stream.type, 'application/octet-stream');
    assert.equal(stream.bytes.length, pt.length + 29, 'stream framing: 0x01 ‖ nonce(12) ‖ ct ‖ tag(16)');
    for (const ct of ['application/octet-stream; charset=binary', 'Application/Octet-Stream']) {
      const raw = await post(ct, pt);
      assert.equal(raw.status, 400, ct);
      assert.equal(JSON.parse(raw.bytes.toString()).err, 'api_bad_request', ct);
      const json = await post(ct, Buffer.from(JSON.stringify({ plaintext: pt.toString('base64') })));
      assert.equal(json.status, 200, ct);
      assert.equal(JSON.parse(json.bytes.toString()).version, 1, ct);
    }
  } finally {
    await dispatcher.close();
    source.close();
  }
});

test('a request Node\'s HTTP parser refuses (an unknown method token) gets the API\'s 400 body from the real Nexus', async () => {
  const r = await pilot.post(PUT, '{}', { method: 'FOO' });
  assert.equal(r.status, 400);
  assert.deepEqual(r.json, { err: 'api_bad_request' });
});
