import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bundleSetOf, createCa, makeSvid, type TestCa } from '../../test/helpers/pki.js';
import { SourceClosedError, StaticX509Source } from './source.js';
import { TrustDomain } from './id.js';
import { verifyX509Svid } from './verify.js';
import { svidChainDer } from './svid.js';

let ca1: TestCa;
let ca2: TestCa;
before(async () => {
  ca1 = await createCa('td1.test');
  ca2 = await createCa('td1.test');
});

test('StaticX509Source serves the SVID and bundles, and update() emits update', async () => {
  const svid1 = await makeSvid(ca1, 'spiffe://td1.test/a');
  const src = new StaticX509Source(svid1, bundleSetOf(ca1));
  assert.equal(src.getX509Svid(), svid1);
  assert.equal(verifyX509Svid(svidChainDer(svid1), src).toString(), 'spiffe://td1.test/a');
  let updates = 0;
  const l = () => updates++;
  src.on('update', l);
  const svid2 = await makeSvid(ca2, 'spiffe://td1.test/a');
  src.update(svid2, bundleSetOf(ca2));
  assert.equal(updates, 1);
  assert.equal(src.getX509Svid(), svid2);
  assert.equal(src.bundleSet().allAuthorities().length, 1);
  // Old CA dropped: the old SVID no longer verifies against the source.
  assert.throws(() => verifyX509Svid(svidChainDer(svid1), src), { code: 'svid_untrusted_chain' });
  src.off('update', l);
  src.update(svid2, bundleSetOf(ca2));
  assert.equal(updates, 1);
});

test('StaticX509Source refuses use after close', async () => {
  const svid = await makeSvid(ca1, 'spiffe://td1.test/a');
  const src = new StaticX509Source(svid, bundleSetOf(ca1));
  src.close();
  src.close();
  assert.ok(src.closed);
  assert.throws(() => src.getX509Svid(), SourceClosedError);
  assert.throws(() => src.getX509BundleForTrustDomain(TrustDomain.parse('td1.test')), SourceClosedError);
  assert.throws(() => src.bundleSet(), SourceClosedError);
  assert.throws(() => src.update(svid, bundleSetOf(ca1)), SourceClosedError);
});
