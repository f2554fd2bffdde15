/**
 * The SPIFFE Workload API client (modelled on go-spiffe's `workloadapi`), the way in from
 * outside: endpoint addresses (endpoint.ts), errors and status rules (errors.ts), response
 * parsing (response.ts), one-shot fetches (client.ts), the watching X.509 source with
 * rotation (x509-source.ts), the fetch-once source for short-lived processes (x509-once.ts), and the wire contract (proto.ts: constants and message shapes, which the dev agent serves through its own grpc-js definition in src/agent/service.ts).
 */
export { assertDefaultTrusted, parseWorkloadEndpoint, workloadEndpointFromEnv, type WorkloadEndpoint } from './endpoint.js';
export { GRPC_STATUS, WorkloadApiError, type WorkloadApiErrorCode } from './errors.js';
export { parseX509BundlesResponse, parseX509SvidResponse, type X509Context } from './response.js';
export { fetchX509BundlesOnce, fetchX509Context, fetchX509SvidOnce, type FetchOptions } from './client.js';
export { WorkloadX509Source, type WorkloadX509SourceOptions } from './x509-source.js';
export { fetchX509SourceOnce, type X509SourceOnceOptions } from './x509-once.js';
export * from './proto.js';
