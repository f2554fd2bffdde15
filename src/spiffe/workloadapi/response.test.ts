/** Workload API response parsing against SVIDs and bundles issued by the dev agent's CA. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { DevCa } from '../../agent/ca.js';
import { TrustDomain } from '../id.js';
import { WorkloadApiError } from './errors.js';
import type { X509SvidResponseMessage } from './proto.js';
import { parseX509SvidResponse } from './response.js';
import { NEXUS, TD, workloadApiFixture } from '../../../test/helpers/workload-api.js';

const fx = workloadApiFixture();
after(() => fx.close());
const { root, ca, goodResponse } = fx;

test('response parsing: SVID + own bundle + federated bundles; key bytes are zeroed', async () => {
  const resp = await goodResponse();
  const other = await DevCa.loadOrCreate(path.join(root, 'ca-other'), TrustDomain.parse('other.org'));
  resp.federated_bundles = { 'spiffe://other.org': other.bundleDer(), 'spiffe://spike.ist': other.bundleDer() };
  const key = resp.svids[0]!.x509_svid_key;
  const ctx = parseX509SvidResponse(resp);
  assert.ok(ctx.svids[0]!.id.equals(NEXUS));
  assert.deepEqual(ctx.bundles.bundles().map((b) => b.trustDomain.name), ['other.org', 'spike.ist']);
  // A federated entry for the SVID's own trust domain does not replace its bundle.
  assert.ok(ctx.bundles.get(TD)!.toDer().equals((await ca()).bundleDer()));
  assert.ok(key.every((b) => b === 0), 'PKCS#8 bytes zeroed after parsing');
});

test('response parsing refuses: no SVID, spiffe_id mismatch, missing own bundle, garbage key, bad bundle key', async () => {
  const bad = (mut: (r: X509SvidResponseMessage) => void) => async () => {
    const r = await goodResponse();
    mut(r);
    assert.throws(() => parseX509SvidResponse(r), (e: unknown) => e instanceof WorkloadApiError && e.code === 'workload_api_bad_response');
  };
  await bad((r) => { r.svids = []; })();
  await bad((r) => { r.svids[0]!.spiffe_id = 'spiffe://spike.ist/spike/pilot/role/superuser'; })();
  await bad((r) => { r.svids[0]!.bundle = Buffer.alloc(0); })();
  await bad((r) => { r.svids[0]!.x509_svid_key = Buffer.from('garbage'); })();
  await bad((r) => { r.svids[0]!.x509_svid = Buffer.from('garbage'); })();
  await bad((r) => { r.federated_bundles = { 'spiffe://Other.org': r.svids[0]!.bundle }; })();
  await bad((r) => { r.federated_bundles = { 'spiffe://other.org': Buffer.from('nope') }; })();
});
