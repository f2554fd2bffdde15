/**
 * Workload API calls: gRPC over a unix socket (or `tcp://ip:port`) with the
 * `workload.spiffe.io: true` header on every call: the one-shot fetches (one attempt, no
 * retries; e.g. for a CLI).
 *
 * One-shot fetches use a small gRPC-over-HTTP/2 call on node:http2 (h2call.ts) and a strict
 * protobuf decoder (messages.ts), as the watching source does (x509-source.ts): no client of
 * the Workload API loads grpc-js or protobufjs (only the dev agent's server does). A one-shot fetch that
 * gets no connection at all (no socket file, a stale one, connection refused) fails with
 * `workload_api_no_agent` at once: a dead agent is reported, not waited for.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { X509BundleSet } from '../bundle.js';
import type { X509Svid } from '../svid.js';
import { parseWorkloadEndpoint, workloadEndpointFromEnv, type WorkloadEndpoint } from './endpoint.js';
import { GRPC_STATUS, badResponse, fatalError, isFatal, noAgentError, unavailableError } from './errors.js';
import { connectOptions, firstStreamMessage, NO_LISTENER } from './h2call.js';
import { decodeX509BundlesResponse, decodeX509SvidResponse } from './messages.js';
import { parseX509BundlesResponse, parseX509SvidResponse, type X509Context } from './response.js';

export interface FetchOptions {
  /** Default: `SPIFFE_ENDPOINT_SOCKET` or `unix:///tmp/spire-agent/public/api.sock`. */
  endpoint?: string;
  /** Default 10 s. One attempt: no retries. */
  timeoutMs?: number;
  /** Synchronous work to do while the agent answers (see h2call.ts); its failure is ignored. */
  whileWaiting?: () => void;
}

function existsNotSocket(file: string): boolean {
  try {
    return !fs.statSync(file).isSocket();
  } catch {
    return false; // absent: the connect says so
  }
}

/**
 * After an `Unavailable` with no message: is anybody listening at all? One plain connect
 * (closed at once) tells a dead agent (no socket, stale socket, refused) from a live agent
 * that has nothing for us yet. Only run on failure, so a good fetch opens one connection.
 */
export function probeListener(ep: WorkloadEndpoint, timeoutMs = 1_000): Promise<'none' | 'listening' | 'unknown'> {
  return probe(connectOptions(ep), timeoutMs);
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

/**
 * Opens one server stream (over node:http2, h2call.ts), decodes and parses its first message,
 * then cancels the stream. The received bytes are zeroed once decoded.
 */
async function firstMessage<Res, Out>(path: string, decode: (b: Buffer) => Res, parse: (r: Res) => Out, opts: FetchOptions): Promise<Out> {
  const ep = parseWorkloadEndpoint(opts.endpoint ?? workloadEndpointFromEnv());
  const timeoutMs = opts.timeoutMs ?? 10_000;
  // A file that is not a socket (a regular file, a folder) can never answer: no agent, at once.
  if (ep.target.startsWith('unix://') && existsNotSocket(ep.target.slice('unix://'.length))) throw noAgentError(ep.address);
  const outcome = await firstStreamMessage(ep, path, timeoutMs, undefined, opts.whileWaiting);
  if (outcome.ok) {
    let msg: Res;
    try {
      msg = decode(outcome.message);
    } catch (cause) {
      throw badResponse('Workload API response is not a valid protobuf message', cause);
    } finally {
      outcome.message.fill(0);
    }
    return parse(msg);
  }
  if (isFatal(outcome.status)) throw fatalError(ep.address, outcome.status);
  if (outcome.noListener) throw noAgentError(ep.address);
  if (outcome.status === GRPC_STATUS.UNAVAILABLE && (await probeListener(ep)) === 'none') throw noAgentError(ep.address);
  throw unavailableError(ep.address, timeoutMs, outcome.status === GRPC_STATUS.OK ? undefined : outcome.status);
}

/** Fetches the current X.509-SVIDs and bundles once (e.g. for a CLI). */
export function fetchX509Context(opts: FetchOptions = {}): Promise<X509Context> {
  return firstMessage('/SpiffeWorkloadAPI/FetchX509SVID', decodeX509SvidResponse, parseX509SvidResponse, opts);
}

/** Fetches the current default X.509-SVID once. */
export async function fetchX509SvidOnce(opts: FetchOptions = {}): Promise<X509Svid> {
  return (await fetchX509Context(opts)).svids[0]!;
}

/** Fetches the current trust bundles once through `FetchX509Bundles`. */
export function fetchX509BundlesOnce(opts: FetchOptions = {}): Promise<X509BundleSet> {
  return firstMessage('/SpiffeWorkloadAPI/FetchX509Bundles', decodeX509BundlesResponse, parseX509BundlesResponse, opts);
}
