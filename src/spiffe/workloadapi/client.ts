/**
 * Workload API calls: gRPC over a unix socket (or `tcp://ip:port`) with the
 * `workload.spiffe.io: true` header on every call, and the one-shot fetches (one attempt, no
 * retries; e.g. for a CLI). The watching source (x509-source.ts) opens its streams here too.
 *
 * grpc-js and the codecs are loaded on the first call, not at import, so commands that never
 * talk to the Workload API (help, usage errors) do not pay for them. A one-shot fetch that
 * gets no connection at all (no socket file, a stale one, connection refused) fails with
 * `workload_api_no_agent` at once: a dead agent is reported, not waited for.
 */
import net from 'node:net';
import type * as Grpc from '@grpc/grpc-js';
import type { X509BundleSet } from '../bundle.js';
import type { X509Svid } from '../svid.js';
import { parseWorkloadEndpoint, workloadEndpointFromEnv, type WorkloadEndpoint } from './endpoint.js';
import { GRPC_STATUS, fatalError, isFatal, noAgentError, unavailableError } from './errors.js';
import { WORKLOAD_API_HEADER, WORKLOAD_API_HEADER_VALUE, workloadApiDefinitions } from './proto.js';
import { parseX509BundlesResponse, parseX509SvidResponse, type X509Context } from './response.js';

type GrpcModule = typeof Grpc;

const CHANNEL_OPTIONS: Grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024,
  'grpc.enable_retries': 0,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 5_000,
};

let grpcModule: Promise<GrpcModule> | undefined;

/** grpc-js, loaded once on first use. */
export function loadGrpc(): Promise<GrpcModule> {
  grpcModule ??= import('@grpc/grpc-js');
  return grpcModule;
}

/** A gRPC client for the endpoint; the caller closes it. */
export function newClient(grpc: GrpcModule, ep: WorkloadEndpoint): Grpc.Client {
  return new grpc.Client(ep.target, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
}

/** The metadata every Workload API request must carry (the security header). */
export function securityMetadata(grpc: GrpcModule): Grpc.Metadata {
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

/** Connection errors meaning nobody listens at the address. */
const NO_LISTENER = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK']);

/**
 * After an `Unavailable` with no message: is anybody listening at all? One plain connect
 * (closed at once) tells a dead agent (no socket, stale socket, refused) from a live agent
 * that has nothing for us yet. Only run on failure, so a good fetch opens one connection.
 */
export function probeListener(ep: WorkloadEndpoint, timeoutMs = 1_000): Promise<'none' | 'listening' | 'unknown'> {
  const target = ep.target.startsWith('unix://') ? { path: ep.target.slice('unix://'.length) } : undefined;
  if (!target) {
    const i = ep.target.lastIndexOf(':');
    const host = ep.target.slice(0, i).replace(/^\[|\]$/g, '');
    return probe({ host, port: Number(ep.target.slice(i + 1)) }, timeoutMs);
  }
  return probe(target, timeoutMs);
}

function probe(to: net.NetConnectOpts, timeoutMs: number): Promise<'none' | 'listening' | 'unknown'> {
  return new Promise((resolve) => {
    const s = net.connect(to);
    const done = (r: 'none' | 'listening' | 'unknown'): void => {
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    const t = setTimeout(() => done('unknown'), timeoutMs);
    s.once('connect', () => done('listening'));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code !== undefined && NO_LISTENER.has(e.code) ? 'none' : 'unknown'));
  });
}

/** Opens one server stream, returns its first message (parsed), then cancels the stream. */
async function firstMessage<Res, Out>(
  method: (d: Awaited<ReturnType<typeof workloadApiDefinitions>>) => Grpc.MethodDefinition<Record<string, never>, Res>,
  parse: (r: Res) => Out,
  opts: FetchOptions,
): Promise<Out> {
  const ep = parseWorkloadEndpoint(opts.endpoint ?? workloadEndpointFromEnv());
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const [grpc, defs] = await Promise.all([loadGrpc(), workloadApiDefinitions()]);
  const m = method(defs);
  const client = newClient(grpc, ep);
  const outcome = await new Promise<{ ok: true; value: Out } | { ok: false; err: unknown; code?: number }>((resolve) => {
    let done = false;
    const call = client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, {}, securityMetadata(grpc), {
      deadline: Date.now() + timeoutMs,
    });
    const finish = (r: { ok: true; value: Out } | { ok: false; err: unknown; code?: number }): void => {
      if (done) return;
      done = true;
      call.cancel();
      client.close();
      resolve(r);
    };
    call.on('data', (msg: Res) => {
      try {
        finish({ ok: true, value: parse(msg) });
      } catch (err) {
        finish({ ok: false, err });
      }
    });
    call.on('error', () => { /* handled in 'status' */ });
    call.on('status', (st: Grpc.StatusObject) => {
      if (isFatal(st.code)) finish({ ok: false, err: fatalError(ep.address, st.code) });
      else finish({ ok: false, err: undefined, code: st.code });
    });
  });
  if (outcome.ok) return outcome.value;
  if (outcome.err !== undefined) throw outcome.err;
  if (outcome.code === GRPC_STATUS.UNAVAILABLE && (await probeListener(ep)) === 'none') throw noAgentError(ep.address);
  throw unavailableError(ep.address, timeoutMs, outcome.code === GRPC_STATUS.OK ? undefined : outcome.code);
}

/** Fetches the current X.509-SVIDs and bundles once (e.g. for a CLI). */
export function fetchX509Context(opts: FetchOptions = {}): Promise<X509Context> {
  return firstMessage((d) => d.FETCH_X509_SVID, parseX509SvidResponse, opts);
}

/** Fetches the current default X.509-SVID once. */
export async function fetchX509SvidOnce(opts: FetchOptions = {}): Promise<X509Svid> {
  return (await fetchX509Context(opts)).svids[0]!;
}

/** Fetches the current trust bundles once through `FetchX509Bundles`. */
export function fetchX509BundlesOnce(opts: FetchOptions = {}): Promise<X509BundleSet> {
  return firstMessage((d) => d.FETCH_X509_BUNDLES, parseX509BundlesResponse, opts);
}
