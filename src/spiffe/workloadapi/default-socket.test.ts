/**
 * attack-planted-default-socket, end to end in the SDK's long-lived source: with nothing
 * configured, `WorkloadX509Source.open()` uses the SPIRE default /tmp/spire-agent/public/api.sock.
 * Another local user who creates that folder (now, or only after the source started waiting
 * for an agent) must get no connection at all. Run in a private mount namespace with its own
 * /tmp (needs root and util-linux `unshare`), so the host's /tmp is never touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (which may itself live under /tmp, as a CI clone does): shown at /mnt in the namespace. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
const SOURCE = '/mnt/dist/src/spiffe/workloadapi/x509-source.js';
const canIsolate = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0;

/** Runs `body` (an ES module script) with a fresh tmpfs on /tmp; returns its last stdout line as JSON. */
function inOwnTmp(body: string): { code: string | undefined; connections: number } {
  const script = `
    import fs from 'node:fs';
    import net from 'node:net';
    const { WorkloadX509Source } = await import(${JSON.stringify(SOURCE)});
    let connections = 0;
    const plant = () => {
      fs.mkdirSync('/tmp/spire-agent/public', { recursive: true });
      fs.chownSync('/tmp/spire-agent', 1234, 1234); // another local user's folder
      const srv = net.createServer((s) => { connections++; s.destroy(); });
      srv.listen('/tmp/spire-agent/public/api.sock');
      srv.unref();
    };
    ${body}
  `;
  const env = { ...process.env };
  delete env['SPIFFE_ENDPOINT_SOCKET'];
  const r = spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind "$2" /mnt && mount -t tmpfs tmpfs /tmp && exec "$0" --input-type=module -e "$1"', process.execPath, script, ROOT], { env, encoding: 'utf8', timeout: 60_000 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  assert.ok(last.startsWith('{'), `child output: ${r.stdout} ${r.stderr}`);
  return JSON.parse(last) as { code: string | undefined; connections: number };
}

test('attack-planted-default-socket: another user\'s /tmp/spire-agent, there already: refused, never dialled', { skip: !canIsolate && 'needs root and unshare' }, () => {
  const r = inOwnTmp(`
    plant();
    let code;
    try { (await WorkloadX509Source.open({ timeoutMs: 3000 })).close(); } catch (e) { code = e.code; }
    console.log(JSON.stringify({ code, connections }));
  `);
  assert.deepEqual(r, { code: 'workload_api_untrusted_default', connections: 0 });
});

test('attack-planted-default-socket: planted only after the source began waiting for an agent: refused, never dialled', { skip: !canIsolate && 'needs root and unshare' }, () => {
  const r = inOwnTmp(`
    const opened = WorkloadX509Source.open({ timeoutMs: 10000, backoffInitialMs: 20, backoffMaxMs: 50 });
    setTimeout(plant, 300);
    let code;
    try { (await opened).close(); } catch (e) { code = e.code; }
    console.log(JSON.stringify({ code, connections }));
  `);
  assert.deepEqual(r, { code: 'workload_api_untrusted_default', connections: 0 });
});
