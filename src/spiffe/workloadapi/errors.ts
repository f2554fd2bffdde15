/**
 * Workload API errors and the status rules of the Workload API standard, in one place:
 * `InvalidArgument` (the server says our request is wrong) and `Unimplemented` are fatal and
 * never retried; every other status — `Unavailable` (agent not ready or not there),
 * `PermissionDenied` (no identity yet), a stream the server ended, transport errors — is
 * retryable. Messages name the endpoint, never key material or response bytes.
 */
import { SpikeError } from '../../lib/index.js';

/**
 * The gRPC status codes this module reasons about (numbers fixed by the gRPC standard), kept
 * here so that loading the error types does not load grpc-js (CLI start-up time).
 */
export const GRPC_STATUS = Object.freeze({
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
});
const STATUS_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(GRPC_STATUS).map(([k, v]) => [v, k]));

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
  /** Nothing listens at the address (no socket file, a stale one, connection refused): no agent runs there. */
  | 'workload_api_no_agent'
  /** The default socket (none configured) or a folder above it belongs to another user: not used. */
  | 'workload_api_untrusted_default'
  /** The source or call was closed before it produced a result. */
  | 'workload_api_closed';

/** A Workload API failure. Messages name the endpoint (never key material or response bytes). */
export class WorkloadApiError extends SpikeError {
  declare readonly code: WorkloadApiErrorCode;
  /** The last gRPC status code seen, when there was one. */
  readonly grpcCode: number | undefined;
  constructor(code: WorkloadApiErrorCode, message: string, options?: { cause?: unknown; grpcCode?: number }) {
    super(code, message, options);
    this.grpcCode = options?.grpcCode;
  }
}

/** A response that cannot be turned into SVIDs and bundles. */
export function badResponse(message: string, cause?: unknown): WorkloadApiError {
  return new WorkloadApiError('workload_api_bad_response', message, cause === undefined ? undefined : { cause });
}

/** Status codes after which a client must not retry (Workload API standard). */
export function isFatal(code: number): boolean {
  return code === GRPC_STATUS.INVALID_ARGUMENT || code === GRPC_STATUS.UNIMPLEMENTED;
}

/** The status's name (`UNAVAILABLE`) for logs and messages. */
export function statusName(code: number): string {
  return STATUS_NAMES.get(code) ?? String(code);
}

/** The error for a fatal status from the endpoint at `address`. */
export function fatalError(address: string, code: number): WorkloadApiError {
  return code === GRPC_STATUS.UNIMPLEMENTED
    ? new WorkloadApiError('workload_api_unimplemented', `Workload API at ${address} does not implement the requested RPC`, { grpcCode: code })
    : new WorkloadApiError('workload_api_rejected', `Workload API at ${address} rejected the request as invalid (InvalidArgument)`, { grpcCode: code });
}

/** Nothing usable came from `address` within `timeoutMs`; `last` is the last status seen. */
export function unavailableError(address: string, timeoutMs: number, last: number | undefined, cause?: unknown): WorkloadApiError {
  const lastText = last === undefined ? 'no answer' : `last status ${statusName(last)}`;
  return new WorkloadApiError(
    'workload_api_unavailable',
    `no Workload API answered with an X.509-SVID on ${address} within ${timeoutMs} ms (${lastText}); is the agent running and is SPIFFE_ENDPOINT_SOCKET right?`,
    { grpcCode: last, cause },
  );
}

/**
 * Nothing listens at `address`: the socket file is missing or stale, or the connection is
 * refused. A one-shot caller (a CLI) reports this at once instead of waiting for an agent.
 */
export function noAgentError(address: string, cause?: unknown): WorkloadApiError {
  return new WorkloadApiError('workload_api_no_agent', `no Workload API at ${address}: is the agent running?`, cause === undefined ? undefined : { cause });
}
