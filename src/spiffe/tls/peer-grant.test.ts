import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bundleSetOf, createCa, createIntermediate, makeSvid } from '../../../test/helpers/pki.js';
import { X509BundleSet } from '../bundle.js';
import { checkGrant, grantFromPath } from './peer-grant.js';
import { verifyX509SvidDetailed } from '../verify.js';

const TD = 'grant.test';
const ID = `spiffe://${TD}/workload`;

async function grantFor(notBefore: Date, notAfter: Date, intermediateNotAfter?: Date) {
  const ca = await createCa(TD);
  const im = await createIntermediate(ca, intermediateNotAfter ? { notAfter: intermediateNotAfter } : {});
  const svid = await makeSvid(im, ID, { notBefore, notAfter });
  const chain = svid.certificates.map((c) => new Uint8Array(c.raw));
  const bundles = bundleSetOf(ca);
  const verified = verifyX509SvidDetailed(chain, bundles, new Date(notBefore.getTime() + 1_000));
  return { ca, bundles, grant: grantFromPath(verified.id, verified.path, notBefore.getTime() + 1_000) };
}

test('a grant holds inside the validity window and lapses after notAfter', async () => {
  const t0 = Math.floor(Date.now() / 1000) * 1000;
  const { grant, bundles } = await grantFor(new Date(t0), new Date(t0 + 3_600_000));
  assert.equal(checkGrant(grant, bundles, t0 + 60_000, 0), 'ok');
  assert.equal(checkGrant(grant, bundles, t0 + 3_600_000 + 1, 0), 'svid_expired');
  assert.equal(checkGrant(grant, bundles, t0 - 1, 0), 'svid_not_yet_valid');
});

test('the window is the narrowest on the path: an intermediate that expires first ends the grant', async () => {
  const t0 = Math.floor(Date.now() / 1000) * 1000;
  const { grant, bundles } = await grantFor(new Date(t0), new Date(t0 + 3_600_000), new Date(t0 + 600_000));
  assert.equal(checkGrant(grant, bundles, t0 + 600_000 + 1, 0), 'svid_expired');
});

test('an authority removed from the bundle (or the whole trust domain gone) withdraws the grant', async () => {
  const t0 = Math.floor(Date.now() / 1000) * 1000;
  const { grant, ca } = await grantFor(new Date(t0), new Date(t0 + 3_600_000));
  const other = await createCa(TD);
  assert.equal(checkGrant(grant, bundleSetOf(ca, other), t0 + 1_000, 0), 'ok');
  assert.equal(checkGrant(grant, bundleSetOf(other), t0 + 1_000, 0), 'anchor_withdrawn');
  assert.equal(checkGrant(grant, new X509BundleSet(), t0 + 1_000, 0), 'anchor_withdrawn');
  const closedSource = { getX509BundleForTrustDomain: () => { throw new Error('closed'); } };
  assert.equal(checkGrant(grant, closedSource, t0 + 1_000, 0), 'anchor_withdrawn');
});

test('maximum age, and the head start before expiry, ask for a graceful re-handshake', async () => {
  const t0 = Math.floor(Date.now() / 1000) * 1000;
  const { grant, bundles } = await grantFor(new Date(t0), new Date(t0 + 3_600_000));
  const est = grant.establishedAt;
  assert.equal(checkGrant(grant, bundles, est + 599_000, 600_000), 'ok');
  assert.equal(checkGrant(grant, bundles, est + 600_000, 600_000), 'max_age');
  // 1 h lifetime: the last 30 s are the head start.
  assert.equal(checkGrant(grant, bundles, t0 + 3_600_000 - 30_001, 0), 'ok');
  assert.equal(checkGrant(grant, bundles, t0 + 3_600_000 - 30_000, 0), 'max_age');
  // Short lifetimes: the last quarter.
  const short = await grantFor(new Date(t0), new Date(t0 + 4_000));
  assert.equal(checkGrant(short.grant, short.bundles, t0 + 2_999, 0), 'ok');
  assert.equal(checkGrant(short.grant, short.bundles, t0 + 3_000, 0), 'max_age');
});
