/**
 * warmTrustStore (context.ts): building Node's root store ahead of time changes nothing that is
 * trusted. After it, a context still trusts its bundle authorities alone: a server whose SVID
 * another CA signed is refused by OpenSSL's chain check, and one signed by the bundle's CA
 * passes. It never throws and may be called more than once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { authorizeIf } from '../authorize.js';
import { StaticX509Source } from '../source.js';
import { bundleSetOf, createCa, makeSvid, type TestCa } from '../../../test/helpers/pki.js';
import { warmTrustStore } from './context.js';
import { contextCache, dialMtls } from './dial.js';

const TD = 'warm.test';
let ca: TestCa;
let otherCa: TestCa;
const servers: tls.Server[] = [];

before(async () => {
  ca = await createCa(TD);
  otherCa = await createCa(TD);
});
after(async () => {
  for (const s of servers) await new Promise<void>((res) => s.close(() => res()));
});

async function serverSignedBy(signer: TestCa): Promise<number> {
  const svid = await makeSvid(signer, `spiffe://${TD}/server`);
  const server = tls.createServer({
    cert: svid.certificates.map((c) => c.toString()).join('\n'),
    key: svid.privateKey.export({ format: 'pem', type: 'pkcs8' }),
    minVersion: 'TLSv1.3',
  }, (s) => s.end());
  servers.push(server);
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  return (server.address() as AddressInfo).port;
}

async function dial(port: number): Promise<void> {
  const source = new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/client`), bundleSetOf(ca));
  await new Promise<void>((resolve, reject) => {
    dialMtls({ hostname: '127.0.0.1', port }, {
      source,
      authorizeServer: authorizeIf(() => true),
      context: contextCache(source),
      timeoutMs: 30_000,
      timeoutError: () => new Error('timeout'),
    }, (err, socket) => {
      if (err) return reject(err);
      socket!.destroy();
      resolve();
    });
  });
}

test('after warmTrustStore a context trusts its bundle alone: a server signed by another CA is refused by OpenSSL', async () => {
  warmTrustStore();
  warmTrustStore();
  await dial(await serverSignedBy(ca));
  await assert.rejects(dial(await serverSignedBy(otherCa)), (e: NodeJS.ErrnoException) => {
    // OpenSSL's verdict (Node's verify error code), before the SPIFFE check is reached.
    assert.equal(typeof e.code, 'string');
    assert.notEqual(e.name, 'PeerRejectedError');
    return true;
  });
});
