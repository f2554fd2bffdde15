/**
 * Fixtures for the Workload API client tests: a temporary directory, a dev CA, good
 * `X509SVIDResponse`s issued by it, and scripted gRPC servers on unix sockets that answer
 * each `FetchX509SVID` call as the test decides. `close()` stops every server and removes the
 * directory.
 */
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DevCa } from '../../src/agent/ca.js';
import { SpiffeId, TrustDomain } from '../../src/spiffe/id.js';
import { workloadApiDefinitions } from '../../src/agent/service.js';
import type { X509SvidResponseMessage } from '../../src/spiffe/workloadapi/index.js';

export const TD = TrustDomain.parse('spike.ist');
export const NEXUS = SpiffeId.parse('spiffe://spike.ist/spike/nexus');

export type ScriptedCall = grpc.ServerWritableStream<unknown, X509SvidResponseMessage>;

export interface ScriptedServer {
  server: grpc.Server;
  sock: string;
  endpoint: string;
  calls(): number;
  close(): void;
}

export interface WorkloadApiFixture {
  /** The temporary directory (removed by `close`). */
  root: string;
  /** Everything here is closed by `close`; tests may push their own servers. */
  servers: { close(): unknown }[];
  /** One dev CA for the fixture (trust domain spike.ist), created on first use. */
  ca(): Promise<DevCa>;
  /** A valid response: one fresh SVID for `id` and the CA's bundle. */
  goodResponse(id?: SpiffeId, ttlMs?: number): Promise<X509SvidResponseMessage>;
  /** A new socket path inside `root`. */
  sockPath(): string;
  /** A scripted Workload API server: `respond(n)` decides what the n-th FetchX509SVID call gets. */
  scripted(respond: (n: number, call: ScriptedCall) => void, sock?: string): Promise<ScriptedServer>;
  close(): Promise<void>;
}

export function workloadApiFixture(): WorkloadApiFixture {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wl-'));
  const servers: { close(): unknown }[] = [];
  let caPromise: Promise<DevCa> | undefined;
  const ca = (): Promise<DevCa> => {
    caPromise ??= DevCa.loadOrCreate(path.join(root, 'ca'), TD);
    return caPromise;
  };
  const goodResponse = async (id = NEXUS, ttlMs = 60_000): Promise<X509SvidResponseMessage> => {
    const c = await ca();
    const s = await c.issueSvid(id, ttlMs);
    return {
      svids: [{ spiffe_id: id.toString(), x509_svid: s.certChainDer, x509_svid_key: s.privateKeyPkcs8, bundle: c.bundleDer(), hint: '' }],
      crl: [],
      federated_bundles: {},
    };
  };
  let sockCount = 0;
  const sockPath = (): string => path.join(root, `s${sockCount++}.sock`);
  const scripted = async (respond: (n: number, call: ScriptedCall) => void, sock = sockPath()): Promise<ScriptedServer> => {
    const server = new grpc.Server();
    const { WORKLOAD_API_SERVICE } = await workloadApiDefinitions();
    let calls = 0;
    const unimpl = (_c: unknown, cb: grpc.sendUnaryData<Buffer>) => cb({ code: grpc.status.UNIMPLEMENTED }, null);
    server.addService(WORKLOAD_API_SERVICE, {
      FetchX509SVID: (call: ScriptedCall) => respond(calls++, call),
      FetchX509Bundles: (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
      FetchJWTSVID: unimpl,
      ValidateJWTSVID: unimpl,
      FetchJWTBundles: (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
    });
    await new Promise<void>((res, rej) => server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
    const handle = { server, sock, endpoint: `unix://${sock}`, calls: () => calls, close: () => server.forceShutdown() };
    servers.push(handle);
    return handle;
  };
  const close = async (): Promise<void> => {
    for (const s of servers) await s.close();
    fs.rmSync(root, { recursive: true, force: true });
  };
  return { root, servers, ca, goodResponse, sockPath, scripted, close };
}

/**
 * A raw node:http2 server on a unix socket of the fixture, answering every stream with
 * `answer`: for answers a grpc-js server would never send. Closed by the fixture's `close`.
 */
export async function rawHttp2Server(fx: WorkloadApiFixture, answer: (s: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders) => void): Promise<string> {
  const sock = fx.sockPath();
  const srv = http2.createServer();
  srv.on('stream', (s, h) => answer(s, h));
  await new Promise<void>((res) => srv.listen(sock, res));
  fx.servers.push({ close: () => new Promise<void>((res) => srv.close(() => res())) });
  return `unix://${sock}`;
}
