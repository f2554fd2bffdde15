/**
 * Workload API calls: gRPC over a unix socket (or `tcp://ip:port`) with the
 * `workload.spiffe.io: true` header on every call, and the one-shot fetches (one attempt, no
 * retries; e.g. for a CLI). The watching source (x509-source.ts) opens its streams here too.
 */
import * as grpc from '@grpc/grpc-js';
import type { X509BundleSet } from '../bundle.js';
import type { X509Svid } from '../svid.js';
import { parseWorkloadEndpoint, workloadEndpointFromEnv, type WorkloadEndpoint } from './endpoint.js';
import { fatalError, isFatal, unavailableError } from './errors.js';
import { FETCH_X509_BUNDLES, FETCH_X509_SVID, WORKLOAD_API_HEADER, WORKLOAD_API_HEADER_VALUE } from './proto.js';
import { parseX509BundlesResponse, parseX509SvidResponse, type X509Context } from './response.js';

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024,
  'grpc.enable_retries': 0,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 5_000,
};

/** A gRPC client for the endpoint; the caller closes it. */
export function newClient(ep: WorkloadEndpoint): grpc.Client {
  return new grpc.Client(ep.target, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
}

/** The metadata every Workload API request carries (the security header). */
export function securityMetadata(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(WORKLOAD_API_HEADER, WORKLOAD_API_HEADER_VALUE);
  return md;
}

export interface FetchOptions {
  /** Default: `SPIFFE_ENDPOINT_SOCKET` or `unix:///tmp/spire-agent/public/api.sock`. */
  endpoint?: string;
  /** Default 10 s. One attempt: no retries. */
  timeoutMs?: number;
}

/** Opens one server stream, returns its first message (parsed), then cancels the stream. */
function firstMessage<Res, Out>(
  method: grpc.MethodDefinition<Record<string, never>, Res>,
  parse: (r: Res) => Out,
  opts: FetchOptions,
): Promise<Out> {
  const ep = parseWorkloadEndpoint(opts.endpoint ?? workloadEndpointFromEnv());
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const client = newClient(ep);
  return new Promise<Out>((resolve, reject) => {
    let done = false;
    const call = client.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, {}, securityMetadata(), {
      deadline: Date.now() + timeoutMs,
    });
    const finish = (err: unknown, value?: Out): void => {
      if (done) return;
      done = true;
      call.cancel();
      client.close();
      if (err) reject(err);
      else resolve(value as Out);
    };
    call.on('data', (msg: Res) => {
      try {
        finish(undefined, parse(msg));
      } catch (err) {
        finish(err);
      }
    });
    call.on('error', () => { /* handled in 'status' */ });
    call.on('status', (st: grpc.StatusObject) => {
      if (done) return;
      if (isFatal(st.code)) finish(fatalError(ep.address, st.code));
      else finish(unavailableError(ep.address, timeoutMs, st.code === grpc.status.OK ? undefined : st.code));
    });
  });
}

/** Fetches the current X.509-SVIDs and bundles once (e.g. for a CLI). */
export function fetchX509Context(opts: FetchOptions = {}): Promise<X509Context> {
  return firstMessage(FETCH_X509_SVID, parseX509SvidResponse, opts);
}

/** Fetches the current default X.509-SVID once. */
export async function fetchX509SvidOnce(opts: FetchOptions = {}): Promise<X509Svid> {
  return (await fetchX509Context(opts)).svids[0]!;
}

/** Fetches the current trust bundles once through `FetchX509Bundles`. */
export function fetchX509BundlesOnce(opts: FetchOptions = {}): Promise<X509BundleSet> {
  return firstMessage(FETCH_X509_BUNDLES, parseX509BundlesResponse, opts);
}
