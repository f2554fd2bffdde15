/**
 * ENV-03 on Nexus's outbound side: with this host's clock an hour off, a Keeper's fresh SVID
 * looks expired (clock ahead) or not yet valid (clock behind). The call fails as
 * `keeper_unreachable`, as before, but now says why: the certificate-date verdict and the
 * clock-skew hint, which Nexus logs with the failure (`keeperFailureFields`). The skew is made
 * from the other side: the server's SVID dates are shifted by an hour.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { StaticX509Source, authorizeAny, type X509BundleSet, type X509Svid } from '../spiffe/index.js';
import { makeSvid, type TestCa } from '../../test/helpers/pki.js';
import { createMtlsPki, SERVER_ID, startServer } from '../../test/helpers/mtls-harness.js';
import { KeeperCallError, KeeperClient, keeperFailureFields } from './client.js';

const HOUR = 3_600_000;
let ca1: TestCa, clientSvid: X509Svid, both: X509BundleSet;
before(async () => ({ ca1, clientSvid, both } = await createMtlsPki()));

async function callKeeperWithSvidFrom(from: number): Promise<unknown> {
  const h = await startServer(await makeSvid(ca1, SERVER_ID, { notBefore: new Date(from), notAfter: new Date(from + HOUR) }), both);
  const client = new KeeperClient({ source: new StaticX509Source(clientSvid, both), authorizeKeeper: authorizeAny(), timeoutMs: 10_000, shareRecipients: [] });
  try {
    return await client.fetchShare(`https://127.0.0.1:${h.server.port}`).then(() => 'answered', (e: unknown) => e);
  } finally {
    await client.close();
    await h.server.close();
  }
}

test('ENV-03 (Nexus → Keeper): a Keeper SVID expired or not yet valid by this host\'s clock fails with the date verdict and a clock-skew hint', async () => {
  const now = Date.now();
  for (const [name, from, state] of [
    ['this host 1 h ahead (Keeper SVID expired)', now - HOUR - 60_000, 'expired'],
    ['this host 1 h behind (Keeper SVID not yet valid)', now + HOUR - 60_000, 'not yet valid'],
  ] as const) {
    const err = await callKeeperWithSvidFrom(from);
    assert.ok(err instanceof KeeperCallError, `${name}: ${String(err)}`);
    assert.equal(err.code, 'keeper_unreachable', name);
    assert.match(err.certTime ?? '', state === 'expired' ? /^(CERT_HAS_EXPIRED|svid_expired)$/ : /^(CERT_NOT_YET_VALID|svid_not_yet_valid)$/, name);
    const fields = keeperFailureFields(err);
    assert.equal(fields.certTime, err.certTime, name);
    assert.match(fields.hint ?? '', new RegExp(`^server SVID ${state} by this host's clock; check for clock skew between this host, the server and the SPIFFE agent$`), name);
  }
});

test('ENV-03 (Nexus → Keeper), control: other failures carry no date verdict or hint', async () => {
  const unreachable = new KeeperCallError('keeper_unreachable', undefined, { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) });
  assert.equal(unreachable.certTime, undefined);
  assert.deepEqual(keeperFailureFields(unreachable), {});
  assert.equal(unreachable.message, 'the Keeper could not be reached or did not answer in time');
  assert.deepEqual(keeperFailureFields(new Error('x')), {});
  // A fresh SVID: the handshake passes and the fake Keeper answers (it has no share route).
  const answered = await callKeeperWithSvidFrom(Date.now() - 60_000);
  assert.ok(answered instanceof KeeperCallError && answered.code !== 'keeper_unreachable' && answered.certTime === undefined, String(answered));
});
