/** Workload API endpoint addresses: what go-spiffe accepts, and the environment default. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWorkloadEndpoint, workloadEndpointFromEnv } from './endpoint.js';
import { WorkloadApiError } from './errors.js';

test('endpoint addresses are validated like go-spiffe', () => {
  assert.equal(parseWorkloadEndpoint('unix:///tmp/a.sock').target, 'unix:///tmp/a.sock');
  assert.equal(parseWorkloadEndpoint('unix:/tmp/a.sock').target, 'unix:///tmp/a.sock');
  assert.equal(parseWorkloadEndpoint('tcp://127.0.0.1:8081').target, '127.0.0.1:8081');
  assert.equal(parseWorkloadEndpoint('tcp://[::1]:8081').target, '[::1]:8081');
  for (const bad of ['', 'tmp/a.sock', '/tmp/a.sock', 'unix://host/tmp/a.sock', 'unix:///tmp/a.sock?x=1', 'unix:///tmp/a.sock#f',
    'unix://', 'unix:///', 'tcp://localhost:8081', 'tcp://127.0.0.1', 'tcp://127.0.0.1:8081/path', 'http://127.0.0.1:80', 'tcp://u@127.0.0.1:1']) {
    assert.throws(() => parseWorkloadEndpoint(bad), (e: unknown) => e instanceof WorkloadApiError && e.code === 'workload_api_endpoint_invalid', bad);
  }
  assert.equal(workloadEndpointFromEnv({}), 'unix:///tmp/spire-agent/public/api.sock');
  assert.equal(workloadEndpointFromEnv({ SPIFFE_ENDPOINT_SOCKET: 'unix:///x' }), 'unix:///x');
});
