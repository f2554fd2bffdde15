/**
 * Issue 17 (idle Keeper memory): the watching source speaks gRPC on node:http2 (h2call.ts) and
 * decodes `FetchX509SVID` with the strict decoder of messages.ts, so a process that only
 * watches its SVID (every SPIKE server, every SDK client) never loads grpc-js,
 * @grpc/proto-loader or protobufjs. Checked in a fresh process against the dev agent's server
 * (grpc-js), by looking at the CommonJS module cache (all three packages are CommonJS).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../lib/log.js';
import { WorkloadApiServer } from '../../agent/server.js';
import { NEXUS, workloadApiFixture } from '../../../test/helpers/workload-api.js';

const silent = createLogger({ component: 'test', level: 'silent' });
const fx = workloadApiFixture();
after(() => fx.close());

test('issue 17: a watching X.509 source gets its SVID, and a rotated one, without loading grpc-js, proto-loader or protobufjs', async () => {
  const c = await fx.ca();
  const srv = await WorkloadApiServer.start({ ca: c, identities: [{ name: 'nexus', spiffeId: NEXUS }], socketDir: path.join(fx.root, 'lean-sockets'), svidTtlMs: 6_000, logger: silent });
  fx.servers.push(srv);
  const endpoint = `unix://${srv.sockets()['nexus']}`;
  const mod = fileURLToPath(new URL('./x509-source.js', import.meta.url));
  const script = `
    import { createRequire } from 'node:module';
    const { WorkloadX509Source } = await import(${JSON.stringify(mod)});
    // Records the source's warnings: a reconnect would log one ('stream ended; reconnecting').
    const warned = [];
    const logger = { debug() {}, info() {}, error() {}, warn(_o, m) { warned.push(m); } };
    const src = await WorkloadX509Source.open({ endpoint: ${JSON.stringify(endpoint)}, timeoutMs: 30000, logger });
    const svid = src.getX509Svid();
    const first = Buffer.from(svid.certificates[0].raw).toString('hex');
    // The agent rotates at half the 6 s lifetime: the second message on the same stream.
    await new Promise((resolve, reject) => { src.once('update', resolve); setTimeout(() => reject(new Error('no rotation within 20 s')), 20000); });
    const rotated = Buffer.from(src.getX509Svid().certificates[0].raw).toString('hex') !== first;
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((f) => /@grpc[\\/]grpc-js|proto-loader|protobufjs/.test(f));
    src.close();
    process.stdout.write(JSON.stringify({ id: svid.id.toString(), hasKey: svid.privateKey !== undefined, rotated, warned, loaded }));
  `;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SPIKE_SYSTEM_LOG_LEVEL: 'ERROR' } }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  const r = JSON.parse(out) as { id: string; hasKey: boolean; rotated: boolean; warned: string[]; loaded: string[] };
  assert.equal(r.id, NEXUS.toString());
  assert.equal(r.hasKey, true);
  assert.equal(r.rotated, true);
  assert.deepEqual(r.warned, [], 'the rotated SVID came on the same stream, without a reconnect');
  assert.deepEqual(r.loaded, []);
});
