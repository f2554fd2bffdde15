/**
 * Workload API errors and the status rules of the Workload API standard, in one place:
 * `InvalidArgument` (the server says our request is wrong) and `Unimplemented` are fatal and
 * never retried; every other status — `Unavailable` (agent not ready or not there),
 * `PermissionDenied` (no identity yet), a stream the server ended, transport errors — is
 * retryable. Messages name the endpoint, never key material or response bytes.
 */
import * as grpc from '@grpc/grpc-js';
import { SpikeError } from '../../lib/index.js';

export type WorkloadApiErrorCode =
  /** Nothing answered (or only with retryable errors) within the time allowed. */
  | 'workload_api_unavailable'
  /** The server answered InvalidArgument: it refuses our request; not retried. */
  | 'workload_api_rejected'
  /** The server does not serve the RPC; not retried. */
  | 'workload_api_unimplemented'
  /** A response could not be parsed into SVIDs and bundles. */
  | 'workload_api_bad_response'
  /** The endpoint address is not `unix:///abs/path` or `tcp://ip:port`. */
  | 'workload_api_endpoint_invalid'
  /** The source or call was closed before it produced a result. */
  | 'workload_api_closed';

/** A Workload API failure. Messages name the endpoint (never key material or response bytes). */
export class WorkloadApiError extends SpikeError {
  declare readonly code: WorkloadApiErrorCode;
  /** The last gRPC status code seen, when there was one. */
  readonly grpcCode: grpc.status | undefined;
  constructor(code: WorkloadApiErrorCode, message: string, options?: { cause?: unknown; grpcCode?: grpc.status }) {
    super(code, message, options);
    this.grpcCode = options?.grpcCode;
  }
}

/** A response that cannot be turned into SVIDs and bundles. */
export function badResponse(message: string, cause?: unknown): WorkloadApiError {
  return new WorkloadApiError('workload_api_bad_response', message, cause === undefined ? undefined : { cause });
}

/** Status codes after which a client must not retry (Workload API standard). */
export function isFatal(code: grpc.status): boolean {
  return code === grpc.status.INVALID_ARGUMENT || code === grpc.status.UNIMPLEMENTED;
}

/** The status's name (`UNAVAILABLE`) for logs and messages. */
export function statusName(code: grpc.status): string {
  return grpc.status[code] ?? String(code);
}

/** The error for a fatal status from the endpoint at `address`. */
export function fatalError(address: string, code: grpc.status): WorkloadApiError {
  return code === grpc.status.UNIMPLEMENTED
    ? new WorkloadApiError('workload_api_unimplemented', `Workload API at ${address} does not implement the requested RPC`, { grpcCode: code })
    : new WorkloadApiError('workload_api_rejected', `Workload API at ${address} rejected the request as invalid (InvalidArgument)`, { grpcCode: code });
}

/** Nothing usable came from `address` within `timeoutMs`; `last` is the last status seen. */
export function unavailableError(address: string, timeoutMs: number, last: grpc.status | undefined, cause?: unknown): WorkloadApiError {
  const lastText = last === undefined ? 'no answer' : `last status ${statusName(last)}`;
  return new WorkloadApiError(
    'workload_api_unavailable',
    `no Workload API answered with an X.509-SVID on ${address} within ${timeoutMs} ms (${lastText}); is the agent running and is SPIFFE_ENDPOINT_SOCKET right?`,
    { grpcCode: last, cause },
  );
}
