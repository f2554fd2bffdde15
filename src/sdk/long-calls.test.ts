/**
 * Operations Nexus answers only when they are done (a sharing move: refresh-shares, reshare,
 * rotate-root-key push to every Keeper, with retries) may take longer than the response-header
 * timeout (SPIKE_HTTP_CLIENT_RESPONSE_HEADER_TIMEOUT, 10 s by default) that guards every other
 * call: the SDK waits for their answer up to the whole request timeout instead, so an operator
 * sees Nexus's own answer, not "Cannot reach SPIKE Nexus (timeout)". Real mTLS server.
 */
import 'reflect-metadata';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createMtlsDispatcher, type MtlsServer } from '../spiffe/tls/index.js';
import { authorizeAny } from '../spiffe/authorize.js';
import { StaticX509Source } from '../spiffe/source.js';
import { PATHS } from '../protocol/index.js';
import { bundleSetOf, createCa, makeSvid } from '../../test/helpers/pki.js';
import { fakeNexus } from '../../test/helpers/mtls-harness.js';
import { NexusClient } from './client.js';
import { NexusApiError } from './errors.js';

const TD = 'td1.test';
const HEADERS_MS = 300;
const ANSWER_AFTER_MS = 1_200; // four times the header timeout, well inside the request timeout
let server: MtlsServer;
let client: NexusClient;
/** The same calls through an undici dispatcher (NexusClient.create), whose own header timeout is HEADERS_MS. */
let viaUndici: NexusClient;

before(async () => {
  const ca = await createCa(TD);
  server = await fakeNexus(ca, (req, res) => {
    req.resume();
    const answer: Record<string, string> = {
      [PATHS.refreshShares]: '{"epoch":3,"threshold":2,"shares":3}',
      [PATHS.reshare]: '{"changed":true,"epoch":4,"threshold":2,"shares":3}',
      [PATHS.rotateRootKey]: '{"epoch":5,"storageKeyId":2,"cipherVersion":2}',
    };
    const body = answer[(req.url ?? '').split('?')[0]!] ?? '{"data":{"k":"v"},"versions":{}}';
    setTimeout(() => res.end(body), ANSWER_AFTER_MS);
  });
  client = await NexusClient.connect({
    urls: [`https://127.0.0.1:${server.port}`],
    source: new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/spike/pilot/role/superuser`), bundleSetOf(ca)),
    env: { SPIKE_TRUST_ROOT_NEXUS: TD, SPIKE_HTTP_CLIENT_RESPONSE_HEADER_TIMEOUT: `${HEADERS_MS}ms` },
    timeoutMs: 30_000,
  });
  viaUndici = NexusClient.create({
    urls: [`https://127.0.0.1:${server.port}`],
    dispatcher: createMtlsDispatcher({
      source: new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/spike/pilot/role/superuser`), bundleSetOf(ca)),
      authorizeServer: authorizeAny(),
      headersTimeoutMs: HEADERS_MS,
    }),
    timeoutMs: 30_000,
  });
});

after(async () => {
  await client?.close();
  await viaUndici?.close();
  await server?.close();
});

test('an ordinary call still fails on the response-header timeout (the control)', async () => {
  await assert.rejects(client.getSecret('app/x'), (e: unknown) => {
    assert.ok(e instanceof NexusApiError, String(e));
    assert.equal(e.failure?.class, 'timeout', e.message);
    return true;
  });
});

test('refresh-shares, reshare and rotate-root-key wait for the answer past the response-header timeout', async () => {
  assert.deepEqual(await client.refreshShares(), { epoch: 3, threshold: 2, shares: 3 });
  assert.deepEqual(await client.reshare(), { changed: true, epoch: 4, threshold: 2, shares: 3 });
  assert.deepEqual(await client.rotateRootKey(), { epoch: 5, storageKeyId: 2, cipherVersion: 2 });
});

test('the same through an undici dispatcher: the per-request header timeout reaches it too', async () => {
  await assert.rejects(viaUndici.getSecret('app/x'), (e: unknown) => e instanceof NexusApiError && e.failure?.class === 'timeout');
  assert.deepEqual(await viaUndici.refreshShares(), { epoch: 3, threshold: 2, shares: 3 });
  assert.deepEqual(await viaUndici.rotateRootKey(), { epoch: 5, storageKeyId: 2, cipherVersion: 2 });
});
