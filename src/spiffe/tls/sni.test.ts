/**
 * The SNI name `dialMtls` sends (worked out by isIpLiteral / sniName, not net.isIP): a host
 * name goes out as the SNI name, an explicit servername wins, an IP literal (IPv4 or IPv6)
 * sends none; the server's SVID is still verified and authorized. A host name with a single
 * address is dialled by that address (resolve.ts) and still sends its name; a wrong server
 * reached that way is still refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dns, { type LookupAddress } from 'node:dns';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { authorizeIf } from '../authorize.js';
import { StaticX509Source } from '../source.js';
import { bundleSetOf, createCa, makeSvid, type TestCa } from '../../../test/helpers/pki.js';
import { contextCache, dialMtls, isIpLiteral, prefetchDial, sniName } from './dial.js';
import { PeerRejectedError } from './peer.js';

const TD = 'sni.test';
const SERVER_ID = `spiffe://${TD}/server`;
let ca: TestCa;
let server: tls.Server;
let port = 0;
const seen: Array<string | false | undefined> = [];

before(async () => {
  ca = await createCa(TD);
  const svid = await makeSvid(ca, SERVER_ID);
  server = tls.createServer({
    cert: svid.certificates.map((c) => c.toString()).join('\n'),
    key: svid.privateKey.export({ format: 'pem', type: 'pkcs8' }),
    minVersion: 'TLSv1.3',
  }, (s) => {
    seen.push((s as tls.TLSSocket & { servername?: string | false }).servername);
    s.end('x');
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  port = (server.address() as AddressInfo).port;
});

after(() => new Promise<void>((res) => server.close(() => res())));

async function dialOnce(hostname: string, servername?: string, serverId = SERVER_ID): Promise<string | false | undefined> {
  const source = new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/client`), bundleSetOf(ca));
  const before = seen.length;
  await new Promise<void>((resolve, reject) => {
    dialMtls({ hostname, port, servername }, {
      source,
      authorizeServer: authorizeIf((id) => id.toString() === serverId),
      context: contextCache(source),
      timeoutMs: 30_000,
      timeoutError: () => new Error('timeout'),
    }, (err, socket) => {
      if (err) return reject(err);
      // The server records the name once its side of the handshake is done, then closes.
      socket!.once('close', () => resolve());
      socket!.resume();
    });
  });
  const deadline = Date.now() + 30_000;
  while (seen.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return seen[seen.length - 1];
}

test('a host name is sent as SNI; an explicit servername wins; an IP literal sends none', async () => {
  assert.equal(await dialOnce('localhost'), 'localhost');
  assert.equal(await dialOnce('localhost', 'nexus.example'), 'nexus.example');
  assert.ok(!(await dialOnce('127.0.0.1')));
});

test('isIpLiteral / sniName: IPv4 and IPv6 literals (with or without brackets) are IPs; names are not', () => {
  for (const ip of ['127.0.0.1', '10.0.0.255', '::1', 'fe80::1', '2001:db8::8a2e:370:7334']) assert.ok(isIpLiteral(ip), ip);
  for (const name of ['localhost', 'nexus.example', '127.0.0.1.nip.io', '1.2.3']) assert.ok(!isIpLiteral(name), name);
  assert.equal(sniName('[::1]'), '');
  assert.equal(sniName('127.0.0.1'), '');
  assert.equal(sniName('spike-nexus.svc'), 'spike-nexus.svc');
});

test('a host name with one address is dialled by that address, sends its name, and is still checked', async () => {
  const realLookup = dns.lookup;
  const asked: string[] = [];
  (dns as { lookup: unknown }).lookup = (host: string, _o: unknown, cb: (e: Error | null, a: LookupAddress[]) => void): void => {
    asked.push(host);
    setImmediate(() => cb(null, [{ address: '127.0.0.1', family: 4 }]));
  };
  try {
    // Only this test's fake lookup knows the name: node:net never saw it.
    assert.equal(await dialOnce('nexus.sni-test.invalid'), 'nexus.sni-test.invalid');
    prefetchDial('nexus.sni-test.invalid');
    assert.equal(await dialOnce('nexus.sni-test.invalid'), 'nexus.sni-test.invalid');
    assert.deepEqual(asked, ['nexus.sni-test.invalid', 'nexus.sni-test.invalid']);
    await assert.rejects(dialOnce('nexus.sni-test.invalid', undefined, `spiffe://${TD}/someone-else`), PeerRejectedError);
  } finally {
    (dns as { lookup: unknown }).lookup = realLookup;
  }
});
