/**
 * When the SDK cannot reach or cannot trust Nexus, the error names the URL(s) tried and the
 * cause class (issue 11 part 5): connection refused, timeout, TLS: server ID not accepted,
 * TLS: chain not trusted … Real mTLS servers from the test PKI; the classifier table over
 * error shapes Node, undici and src/spiffe/tls/ produce.
 */
import 'reflect-metadata';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createMtlsServer, PeerRejectedError, type MtlsServer } from '../spiffe/tls/index.js';
import { StaticX509Source } from '../spiffe/source.js';
import { createLogger } from '../lib/log.js';
import { bundleSetOf, createCa, makeSvid, type TestCa } from '../../test/helpers/pki.js';
import { NexusClient } from './client.js';
import { NexusApiError } from './errors.js';
import { classifyFailureCause, failureText, type FailureClass } from './failure.js';

const TD = 'td1.test';
const ENV = { SPIKE_TRUST_ROOT_NEXUS: TD, SPIKE_TRUST_ROOT_PILOT: TD };
let ca: TestCa;
let otherCa: TestCa;
let clientSource: StaticX509Source;
const servers: MtlsServer[] = [];
const raw: net.Server[] = [];
const accepted: net.Socket[] = []; // connections the silent server holds open (destroyed at the end)
const clients: NexusClient[] = [];

before(async () => {
  ca = await createCa(TD);
  otherCa = await createCa(TD); // same trust domain, another CA: not in the client's bundle
  clientSource = new StaticX509Source(await makeSvid(ca, `spiffe://${TD}/spike/pilot/role/superuser`), bundleSetOf(ca));
});

after(async () => {
  for (const c of clients) await c.close();
  for (const s of servers) await s.close();
  for (const s of raw) s.close();
  // Otherwise the silent server's held connection keeps the file alive ~9 s after its tests.
  for (const s of accepted) s.destroy();
});

async function server(issuer: TestCa, spiffeId: string, seen: { n: number }): Promise<string> {
  const s = createMtlsServer({
    source: new StaticX509Source(await makeSvid(issuer, spiffeId), bundleSetOf(ca, issuer)),
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ component: 'sdk-test', level: 'silent' }),
    handler: (_req, res) => {
      seen.n++;
      res.end('{}');
    },
  });
  await s.listen();
  servers.push(s);
  return `https://127.0.0.1:${s.port}`;
}

async function deadUrl(): Promise<string> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `https://127.0.0.1:${port}`;
}

async function client(urls: string[], timeoutMs = 10_000): Promise<NexusClient> {
  const c = await NexusClient.connect({ urls, source: clientSource, env: ENV, timeoutMs, retryUnavailableMs: 0 }); // each refusal reported at once
  clients.push(c);
  return c;
}

function fails(code: string, url: string, cls: FailureClass, detail?: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof NexusApiError, String(e));
    assert.equal(e.code, code);
    assert.equal(e.url, url);
    assert.equal(e.failure?.class, cls);
    if (detail) assert.match(e.failure?.detail ?? '', detail);
    assert.ok(e.message.includes(url), e.message);
    assert.ok(e.message.includes(failureText(e.failure!)), e.message);
    assert.ok(!e.message.includes('\n'));
    return true;
  };
}

test('connection refused: the error names the URL and "connection refused"', async () => {
  const url = await deadUrl();
  const c = await client([url]);
  await assert.rejects(c.putSecret('a/b', { password: 's3cret' }), fails('net_peer_connection', url, 'connection_refused'));
  await assert.rejects(c.listSecrets(), (e: unknown) => {
    assert.equal((e as Error).message, `failed to talk to SPIKE Nexus: ${url} (connection refused)`);
    return true;
  });
});

test('TLS-21: a valid SVID that is not Nexus → "TLS: server ID not accepted", nothing sent', async () => {
  const seen = { n: 0 };
  const url = await server(ca, `spiffe://${TD}/app/workload`, seen);
  const c = await client([url]);
  await assert.rejects(c.putSecret('a/b', { password: 's3cret' }), fails('tls_peer_rejected', url, 'tls_server_id_not_accepted'));
  assert.equal(seen.n, 0);
});

test('a Nexus ID from a CA outside the bundle → "TLS: chain not trusted", nothing sent, no fail-over', async () => {
  const seenBad = { n: 0 };
  const seenGood = { n: 0 };
  const bad = await server(otherCa, `spiffe://${TD}/spike/nexus`, seenBad);
  const good = await server(ca, `spiffe://${TD}/spike/nexus`, seenGood);
  const c = await client([bad, good]);
  await assert.rejects(c.listSecrets(), fails('tls_peer_rejected', bad, 'tls_chain_not_trusted', /^[A-Z_]+$|^svid_/));
  assert.equal(seenBad.n, 0);
  assert.equal(seenGood.n, 0, 'a trust failure is a security error, never hidden by fail-over');
});

test('a server that never answers → "timeout"; several URLs are all named', async () => {
  const silent = net.createServer((s) => { accepted.push(s); }); // accepts, never speaks TLS
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  raw.push(silent);
  const url = `https://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
  const dead = await deadUrl();
  const c = await client([dead, url], 1_500);
  await assert.rejects(c.listSecrets(), (e: unknown) => {
    assert.ok(e instanceof NexusApiError);
    assert.deepEqual(e.attempts.map((a) => [a.url, a.failure.class]), [[dead, 'connection_refused'], [url, 'timeout']]);
    assert.equal(e.message, `failed to talk to SPIKE Nexus: ${dead} (connection refused), ${url} (timeout)`);
    return true;
  });
});

test('classifier table: error shapes → cause class', () => {
  const err = (code: string, extra: Record<string, unknown> = {}): Error => Object.assign(new Error('x'), { code, ...extra });
  const rows: Array<[string, unknown, FailureClass, string | undefined]> = [
    ['refused', err('ECONNREFUSED'), 'connection_refused', undefined],
    ['happy eyeballs', Object.assign(new AggregateError([err('ECONNREFUSED'), err('ECONNREFUSED')]), { code: 'ECONNREFUSED' }), 'connection_refused', undefined],
    ['dns', err('ENOTFOUND'), 'host_not_found', undefined],
    ['unreachable', err('EHOSTUNREACH'), 'host_unreachable', undefined],
    ['connect timeout', err('UND_ERR_CONNECT_TIMEOUT'), 'timeout', undefined],
    ['headers timeout', err('UND_ERR_HEADERS_TIMEOUT'), 'timeout', undefined],
    ['reset', err('ECONNRESET'), 'connection_closed', undefined],
    ['undici socket', err('UND_ERR_SOCKET'), 'connection_closed', undefined],
    ['server ID', new PeerRejectedError('unauthorized'), 'tls_server_id_not_accepted', undefined],
    ['wrapped server ID', Object.assign(new Error('fetch failed'), { cause: new PeerRejectedError('unauthorized') }), 'tls_server_id_not_accepted', undefined],
    ['svid', new PeerRejectedError('svid_untrusted_chain'), 'tls_chain_not_trusted', 'svid_untrusted_chain'],
    ['openssl', err('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'tls_chain_not_trusted', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['expired', err('CERT_HAS_EXPIRED'), 'tls_chain_not_trusted', 'CERT_HAS_EXPIRED'],
    ['alert', err('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), 'tls_handshake_failed', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'],
    ['unknown', new Error('?'), 'connection_failed', undefined],
    ['not an error', 'boom', 'connection_failed', undefined],
  ];
  for (const [name, e, cls, detail] of rows) {
    const f = classifyFailureCause(e);
    assert.equal(f.class, cls, name);
    assert.equal(f.detail, detail, name);
  }
  const aborted = AbortSignal.abort();
  assert.equal(classifyFailureCause(err('UND_ERR_ABORTED'), aborted).class, 'timeout');
  // a hostile reason string is never copied into a message
  assert.equal(classifyFailureCause(new PeerRejectedError('svid bad\nline')).detail, undefined);
});

test('ENV-03 (client → Nexus): a server SVID refused for its dates says so with a clock-skew hint; other failures do not', () => {
  assert.equal(failureText({ class: 'tls_chain_not_trusted', detail: 'CERT_HAS_EXPIRED' }),
    "TLS: chain not trusted: CERT_HAS_EXPIRED — server SVID expired by this host's clock; check for clock skew between this host, the server and the SPIFFE agent");
  assert.equal(failureText({ class: 'tls_chain_not_trusted', detail: 'svid_not_yet_valid' }),
    "TLS: chain not trusted: svid_not_yet_valid — server SVID not yet valid by this host's clock; check for clock skew between this host, the server and the SPIFFE agent");
  assert.equal(failureText({ class: 'tls_chain_not_trusted', detail: 'svid_untrusted_chain' }), 'TLS: chain not trusted: svid_untrusted_chain');
  assert.equal(failureText({ class: 'connection_refused' }), 'connection refused');
});
