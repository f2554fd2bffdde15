/** Workload API endpoint addresses: what go-spiffe accepts, and the environment default. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assertDefaultTrusted, parseWorkloadEndpoint, workloadEndpointFromEnv } from './endpoint.js';
import { WorkloadApiError } from './errors.js';
import { DEFAULT_WORKLOAD_API_ENDPOINT } from './proto.js';

test('endpoint addresses are validated like go-spiffe', () => {
  assert.equal(parseWorkloadEndpoint('unix:///tmp/a.sock').target, 'unix:///tmp/a.sock');
  assert.equal(parseWorkloadEndpoint('unix:/tmp/a.sock').target, 'unix:///tmp/a.sock');
  assert.equal(parseWorkloadEndpoint('tcp://127.0.0.1:8081').target, '127.0.0.1:8081');
  assert.equal(parseWorkloadEndpoint('tcp://[::1]:8081').target, '[::1]:8081');
  for (const bad of ['', 'tmp/a.sock', '/tmp/a.sock', 'unix://host/tmp/a.sock', 'unix:///tmp/a.sock?x=1', 'unix:///tmp/a.sock#f',
    'unix://', 'unix:///', 'tcp://localhost:8081', 'tcp://127.0.0.1', 'tcp://127.0.0.1:8081/path', 'http://127.0.0.1:80', 'tcp://u@127.0.0.1:1']) {
    assert.throws(() => parseWorkloadEndpoint(bad), (e: unknown) => e instanceof WorkloadApiError && e.code === 'workload_api_endpoint_invalid', bad);
  }
  // (The unconfigured default itself is judged on this host's /tmp: see the test below.)
  assert.equal(DEFAULT_WORKLOAD_API_ENDPOINT, 'unix:///tmp/spire-agent/public/api.sock');
  assert.equal(workloadEndpointFromEnv({ SPIFFE_ENDPOINT_SOCKET: 'unix:///x' }), 'unix:///x');
});

test('attack-planted-default-socket: the default Workload API socket is used unconfigured only when it and the folders above it are root\'s or ours', () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'spike-default-sock-'));
  try {
    const me = process.getuid!();
    const agentDir = path.join(base, 'spire-agent');
    const pub = path.join(agentDir, 'public');
    fs.mkdirSync(pub, { recursive: true, mode: 0o755 });
    fs.chmodSync(base, 0o755);
    const sock = path.join(pub, 'api.sock');
    fs.writeFileSync(sock, ''); // the check looks at owners and modes only
    const refused = (why: RegExp) => (e: unknown): boolean => e instanceof WorkloadApiError && e.code === 'workload_api_untrusted_default' && why.test(e.message);
    assert.equal(assertDefaultTrusted(sock, me), true, 'ours, 0755 all the way');
    assert.equal(assertDefaultTrusted(path.join(base, 'nothing', 'api.sock'), me), false, 'absent: nothing to dial yet (asked again before each dial)');
    // Another local user made spire-agent/ first (as root here: chown it; else ask as another uid).
    const other = me === 0 ? 0 : 4242;
    if (me === 0) fs.chownSync(agentDir, 1234, 1234);
    assert.throws(() => assertDefaultTrusted(sock, other), refused(/belongs to another user/));
    if (me === 0) fs.chownSync(agentDir, 0, 0);
    fs.chmodSync(agentDir, 0o777); // anyone may swap public/ (not sticky)
    assert.throws(() => assertDefaultTrusted(sock, me), refused(new RegExp(`${agentDir} is writable by group or others`)));
    fs.chmodSync(agentDir, 0o1777); // sticky, as /tmp: fine
    assert.doesNotThrow(() => assertDefaultTrusted(sock, me));
    if (me === 0) {
      fs.chownSync(sock, 1234, 1234); // the socket itself is another user's
      assert.throws(() => assertDefaultTrusted(sock, 0), refused(/api\.sock belongs to another user/));
      fs.chownSync(sock, 0, 0);
      // A symlink on the way that another user owns (they could re-point it after the check).
      const linked = path.join(base, 'linked');
      fs.symlinkSync(agentDir, linked);
      fs.lchownSync(linked, 1234, 1234);
      assert.throws(() => assertDefaultTrusted(path.join(linked, 'public', 'api.sock'), 0), refused(new RegExp(`${linked} belongs to another user`)));
    }
    // Named in SPIFFE_ENDPOINT_SOCKET, no check applies (the operator chose it).
    assert.equal(workloadEndpointFromEnv({ SPIFFE_ENDPOINT_SOCKET: `unix://${sock}` }), `unix://${sock}`);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});
