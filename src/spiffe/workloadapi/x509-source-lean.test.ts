/**
 * Issue 17 (idle Keeper memory): the watching source decodes `FetchX509SVID` with the strict
 * decoder of messages.ts, so a process that only watches its SVID (every SPIKE server) never
 * loads @grpc/proto-loader or protobufjs. Checked in a fresh process against the dev agent's
 * server, by looking at the CommonJS module cache (both packages are CommonJS).
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

test('issue 17: a watching X.509 source gets its SVID without loading proto-loader or protobufjs', async () => {
  const c = await fx.ca();
  const srv = await WorkloadApiServer.start({ ca: c, identities: [{ name: 'nexus', spiffeId: NEXUS }], socketDir: path.join(fx.root, 'lean-sockets'), svidTtlMs: 60_000, logger: silent });
  fx.servers.push(srv);
  const endpoint = `unix://${srv.sockets()['nexus']}`;
  const mod = fileURLToPath(new URL('./x509-source.js', import.meta.url));
  const script = `
    import { createRequire } from 'node:module';
    const { WorkloadX509Source } = await import(${JSON.stringify(mod)});
    const src = await WorkloadX509Source.open({ endpoint: ${JSON.stringify(endpoint)}, timeoutMs: 30000 });
    const svid = src.getX509Svid();
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((f) => /proto-loader|protobufjs/.test(f));
    src.close();
    process.stdout.write(JSON.stringify({ id: svid.id.toString(), hasKey: svid.privateKey !== undefined, loaded }));
  `;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SPIKE_SYSTEM_LOG_LEVEL: 'ERROR' } }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  const r = JSON.parse(out) as { id: string; hasKey: boolean; loaded: string[] };
  assert.equal(r.id, NEXUS.toString());
  assert.equal(r.hasKey, true);
  assert.deepEqual(r.loaded, []);
});
