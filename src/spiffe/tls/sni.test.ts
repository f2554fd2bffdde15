/**
 * The SNI name `dialMtls` sends (worked out by isIpLiteral / sniName, not net.isIP): a host
 * name goes out as the SNI name, an explicit servername wins, an IP literal (IPv4 or IPv6)
 * sends none; the server's SVID is still verified and authorized.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { authorizeIf } from '../authorize.js';
import { StaticX509Source } from '../source.js';
import { bundleSetOf, createCa, makeSvid, type TestCa } from '../../../test/helpers/pki.js';
import { contextCache, dialMtls, isIpLiteral, sniName } from './dial.js';

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

async function dialOnce(hostname: string, servername?: string): Promise<string | false | undefined> {
  const source = new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/client`), bundleSetOf(ca));
  const before = seen.length;
  await new Promise<void>((resolve, reject) => {
    dialMtls({ hostname, port, servername }, {
      source,
      authorizeServer: authorizeIf((id) => id.toString() === SERVER_ID),
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
