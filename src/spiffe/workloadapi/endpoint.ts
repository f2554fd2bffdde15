/**
 * Workload API endpoint addresses, validated like go-spiffe's: `unix:///abs/path` (or
 * `unix:/abs/path`) or `tcp://<ip>:<port>`, and the `SPIFFE_ENDPOINT_SOCKET` default.
 */
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

/** `SPIFFE_ENDPOINT_SOCKET` or the standard default. */
export function workloadEndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const v = env[WORKLOAD_API_ENDPOINT_ENV];
  return v !== undefined && v !== '' ? v : DEFAULT_WORKLOAD_API_ENDPOINT;
}
