/**
 * attack-sharing-record-replay, at the one place shares leave Nexus and Bootstrap: the Keeper
 * client sends a share only to a URL of the configured Keeper list (`shareRecipients`). A
 * Keeper list from anywhere else (a sharing record, even a validly tagged old one put back in
 * the database) cannot make it send one: the call fails before any connection is made.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { StaticX509Source, authorizeAny, type X509BundleSet, type X509Svid } from '../spiffe/index.js';
import { makeSvid, type TestCa } from '../../test/helpers/pki.js';
import { createMtlsPki, SERVER_ID, startServer } from '../../test/helpers/mtls-harness.js';
import { KeeperCallError, KeeperClient } from './client.js';

let ca1: TestCa, clientSvid: X509Svid, both: X509BundleSet;
before(async () => ({ ca1, clientSvid, both } = await createMtlsPki()));

test('attack-sharing-record-replay: a share for a Keeper URL outside the configured list is never sent; a configured one is', async () => {
  const h = await startServer(await makeSvid(ca1, SERVER_ID), both);
  const url = `https://127.0.0.1:${h.server.port}`;
  const share = { value: new Uint8Array(32).fill(9), id: 1, epoch: 1, commitments: undefined };
  const refusing = new KeeperClient({ source: new StaticX509Source(clientSvid, both), authorizeKeeper: authorizeAny(), shareRecipients: ['https://k1:8443'] });
  const sending = new KeeperClient({ source: new StaticX509Source(clientSvid, both), authorizeKeeper: authorizeAny(), shareRecipients: ['https://k1:8443', url] });
  try {
    assert.equal(refusing.mayReceiveShares(url), false);
    await assert.rejects(refusing.contribute(url, share), (e: unknown) => e instanceof KeeperCallError && e.code === 'keeper_not_configured');
    assert.deepEqual(h.seen, [], 'nothing reached the unconfigured URL');
    assert.equal(sending.mayReceiveShares(url), true);
    await sending.contribute(url, share);
    assert.equal(h.seen.length, 1, 'the configured URL is sent its share');
  } finally {
    await refusing.close();
    await sending.close();
    await h.server.close();
  }
});
