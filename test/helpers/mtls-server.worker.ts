/**
 * An mTLS server stand-in for SPIKE Nexus in a worker thread, so that a test's client and the
 * server run on separate event loops (handshakes then really overlap, as between processes).
 * workerData: `{ td, caKey, caPem, maxHandshakesPerSource, maxHandshakes? }`; it posts `{ port }` once
 * listening, answers `'count'` with `{ requests }` (requests served so far, each answered `{}`),
 * and closes on `'close'`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createMtlsServer } from '../../src/spiffe/tls/index.js';
import { StaticX509Source } from '../../src/spiffe/source.js';
import { createLogger } from '../../src/lib/log.js';
import { bundleSetOf, loadCa, makeSvid } from './pki.js';

interface Data {
  td: string;
  caKey: Buffer;
  caPem: string;
  maxHandshakesPerSource: number;
  maxHandshakes?: number;
}

const d = workerData as Data;
const ca = await loadCa(d.td, Buffer.from(d.caKey), d.caPem);
let requests = 0;
const server = createMtlsServer({
  source: new StaticX509Source(await makeSvid(ca, `spiffe://${d.td}/spike/nexus`), bundleSetOf(ca)),
  host: '127.0.0.1',
  port: 0,
  maxHandshakesPerSource: d.maxHandshakesPerSource,
  ...(d.maxHandshakes !== undefined ? { maxHandshakes: d.maxHandshakes } : {}),
  logger: createLogger({ component: 'mtls-server-worker', level: 'silent' }),
  handler: (req, res) => {
    requests++;
    req.resume();
    req.on('end', () => res.end('{}'));
  },
});
await server.listen();
parentPort?.on('message', (m: unknown) => {
  if (m === 'count') parentPort?.postMessage({ requests });
  if (m === 'close') void server.close().then(() => parentPort?.close());
});
parentPort?.postMessage({ port: server.port });
