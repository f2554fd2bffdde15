/**
 * Workload API endpoint addresses, validated like go-spiffe's: `unix:///abs/path` (or
 * `unix:/abs/path`) or `tcp://<ip>:<port>`, and the `SPIFFE_ENDPOINT_SOCKET` default.
 */
import fs from 'node:fs';
import { foreignAncestor } from '../../lib/index.js';
import { WorkloadApiError } from './errors.js';
import { DEFAULT_WORKLOAD_API_ENDPOINT, WORKLOAD_API_ENDPOINT_ENV } from './proto.js';

export interface WorkloadEndpoint {
  /** The address as configured (`unix:///path` or `tcp://ip:port`). */
  address: string;
  /** What grpc-js dials. */
  target: string;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * Validates a Workload API address like go-spiffe does: `unix:///abs/path` (or `unix:/abs/path`)
 * with no host, query or fragment; or `tcp://<ip>:<port>` with an IP literal and nothing else.
 */
export function parseWorkloadEndpoint(address: string): WorkloadEndpoint {
  const bad = (why: string): never => {
    throw new WorkloadApiError('workload_api_endpoint_invalid', `Workload API endpoint ${why} (expected unix:///path or tcp://ip:port)`);
  };
  if (typeof address !== 'string' || address.length === 0) return bad('is empty');
  if (address.length > 4096) return bad('is too long');
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    return bad('is not a URL');
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') return bad('must not have a query, fragment or user');
  if (url.protocol === 'unix:') {
    if (url.host !== '') return bad('must not have a host (use unix:///absolute/path)');
    const socketPath = decodeURIComponent(url.pathname);
    if (!socketPath.startsWith('/') || socketPath === '/' || socketPath.includes('\0')) return bad('must name an absolute socket path');
    return { address, target: `unix://${socketPath}` };
  }
  if (url.protocol === 'tcp:') {
    if (url.pathname !== '' && url.pathname !== '/') return bad('must not have a path');
    if (url.port === '') return bad('must have a port');
    const host = url.hostname;
    const isV6 = host.startsWith('[') && host.endsWith(']');
    if (!isV6 && !IPV4.test(host)) return bad('host must be an IP address');
    return { address, target: `${host}:${url.port}` };
  }
  return bad('has an unsupported scheme');
}

/** `SPIFFE_ENDPOINT_SOCKET`, or the standard default when it may be trusted ({@link assertDefaultTrusted}). */
export function workloadEndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const v = env[WORKLOAD_API_ENDPOINT_ENV];
  if (v !== undefined && v !== '') return v;
  assertDefaultTrusted();
  return DEFAULT_WORKLOAD_API_ENDPOINT;
}

const DEFAULT_SOCKET = DEFAULT_WORKLOAD_API_ENDPOINT.slice('unix://'.length);

/**
 * The standard default socket lives under /tmp, where any local user may create
 * `spire-agent/` first and answer with their own trust bundle and identities. Used without
 * being configured, it is trusted only when the socket and every folder above it belong to
 * root or to this user, no folder writable by others unless sticky (`foreignAncestor`); else
 * `workload_api_untrusted_default`. Returns false while the socket is not there (nothing to
 * dial yet: callers that wait ask again before each dial, so a socket that appears later is
 * judged too). An agent running as a user of its own there is used by naming it in
 * `SPIFFE_ENDPOINT_SOCKET`, which trusts that path as it is. `socket`/`uid`: for tests.
 */
export function assertDefaultTrusted(socket = DEFAULT_SOCKET, uid = process.getuid?.()): boolean {
  if (uid !== undefined) {
    const bad = foreignAncestor(socket, uid, { self: true });
    if (bad !== undefined) {
      const why = bad.why === 'owner' ? 'belongs to another user' : bad.why === 'writable' ? 'is writable by group or others' : 'cannot be resolved';
      throw new WorkloadApiError('workload_api_untrusted_default',
        `refusing the default Workload API socket ${socket}: ${bad.path} ${why} (if that user runs your SPIRE agent, name its socket in ${WORKLOAD_API_ENDPOINT_ENV} to trust it)`);
    }
  }
  return fs.existsSync(socket);
}
