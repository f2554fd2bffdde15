/**
 * SPIFFE Workload API client (modelled on go-spiffe's `workloadapi`): gRPC over a unix socket
 * (or `tcp://ip:port`), the `workload.spiffe.io: true` header on every call, and
 * {@link WorkloadX509Source}, which watches `FetchX509SVID` and always holds the latest
 * X.509-SVIDs (the first is the default) and bundles (each SVID's trust-domain bundle plus the
 * federated ones).
 *
 * Status handling follows the Workload API standard: `InvalidArgument` (the server says our
 * request is wrong) and `Unimplemented` are reported and never retried; everything else —
 * `Unavailable` (agent not ready or not there), `PermissionDenied` (no identity yet), a stream
 * the server ended, transport errors — is retried with bounded exponential backoff and jitter.
 * A response that cannot be parsed is reported and skipped; the previous values stay in use.
 *
 * Nothing here depends on which agent answers: SPIRE and spike-agent look the same.
 */
import { EventEmitter } from 'node:events';
import { createHash, randomInt } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { SpikeError } from '../../lib/errors.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { X509Bundle, X509BundleSet } from '../bundle.js';
import { TrustDomain } from '../id.js';
import { SourceClosedError, type X509Source } from '../source.js';
import { parseX509Svid, type X509Svid } from '../svid.js';
import {
  DEFAULT_WORKLOAD_API_ENDPOINT,
  FETCH_X509_BUNDLES,
  FETCH_X509_SVID,
  WORKLOAD_API_ENDPOINT_ENV,
  WORKLOAD_API_HEADER,
  WORKLOAD_API_HEADER_VALUE,
  type X509BundlesResponseMessage,
  type X509SvidResponseMessage,
} from './proto.js';

export {
  DEFAULT_WORKLOAD_API_ENDPOINT,
  WORKLOAD_API_ENDPOINT_ENV,
  WORKLOAD_API_HEADER,
  WORKLOAD_API_HEADER_VALUE,
} from './proto.js';

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

// ---------------------------------------------------------------------------------------------
// Endpoint addresses

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
  let u: URL;
  try {
    u = new URL(address);
  } catch {
    return bad('is not a URL');
  }
  if (u.search !== '' || u.hash !== '' || u.username !== '' || u.password !== '') return bad('must not have a query, fragment or user');
  if (u.protocol === 'unix:') {
    if (u.host !== '') return bad('must not have a host (use unix:///absolute/path)');
    const p = decodeURIComponent(u.pathname);
    if (!p.startsWith('/') || p === '/' || p.includes('\0')) return bad('must name an absolute socket path');
    return { address, target: `unix://${p}` };
  }
  if (u.protocol === 'tcp:') {
    if (u.pathname !== '' && u.pathname !== '/') return bad('must not have a path');
    if (u.port === '') return bad('must have a port');
    const host = u.hostname;
    const isV6 = host.startsWith('[') && host.endsWith(']');
    if (!isV6 && !IPV4.test(host)) return bad('host must be an IP address');
    return { address, target: `${host}:${u.port}` };
  }
  return bad('has an unsupported scheme');
}

/** `SPIFFE_ENDPOINT_SOCKET` or the standard default. */
export function workloadEndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const v = env[WORKLOAD_API_ENDPOINT_ENV];
  return v !== undefined && v !== '' ? v : DEFAULT_WORKLOAD_API_ENDPOINT;
}

// ---------------------------------------------------------------------------------------------
// Response parsing

/** The parsed content of one `X509SVIDResponse`. */
export interface X509Context {
  /** At least one; the first is the default. */
  svids: X509Svid[];
  bundles: X509BundleSet;
}

function badResponse(message: string, cause?: unknown): WorkloadApiError {
  return new WorkloadApiError('workload_api_bad_response', message, cause === undefined ? undefined : { cause });
}

function parseBundleMap(map: Record<string, Buffer>, into: X509BundleSet, skip?: (td: TrustDomain) => boolean): void {
  for (const [key, der] of Object.entries(map)) {
    let td: TrustDomain;
    try {
      td = TrustDomain.parse(key);
    } catch (cause) {
      throw badResponse('Workload API response has a bundle keyed by an invalid trust domain', cause);
    }
    if (skip?.(td)) continue;
    try {
      into.set(X509Bundle.fromDer(td, der));
    } catch (cause) {
      throw badResponse('Workload API response has a malformed bundle', cause);
    }
  }
}

/**
 * Turns an `X509SVIDResponse` into SVIDs and bundles, applying the own-SVID rules to each SVID
 * and checking that its `spiffe_id` field names the certificate's ID. Zeroes the key bytes of
 * the message. Throws {@link WorkloadApiError} `workload_api_bad_response`.
 */
export function parseX509SvidResponse(resp: X509SvidResponseMessage): X509Context {
  try {
    if (resp.svids.length === 0) throw badResponse('Workload API response carries no X.509-SVID');
    const svids: X509Svid[] = [];
    const bundles = new X509BundleSet();
    for (const m of resp.svids) {
      let svid: X509Svid;
      try {
        svid = parseX509Svid(m.x509_svid, m.x509_svid_key, m.hint);
      } catch (cause) {
        throw badResponse('Workload API response has an invalid X.509-SVID', cause);
      }
      if (svid.id.toString() !== m.spiffe_id) throw badResponse('Workload API response spiffe_id does not match its certificate');
      svids.push(svid);
      if (m.bundle.length > 0 && !bundles.has(svid.id.trustDomain)) {
        try {
          bundles.set(X509Bundle.fromDer(svid.id.trustDomain, m.bundle));
        } catch (cause) {
          throw badResponse('Workload API response has a malformed bundle', cause);
        }
      }
    }
    const own = svids[0]!.id.trustDomain;
    if (!bundles.has(own)) throw badResponse('Workload API response lacks the bundle of the SVID trust domain');
    // A federated entry never replaces a trust domain's own bundle.
    const ownDomains = new Set(svids.map((s) => s.id.trustDomain.name));
    parseBundleMap(resp.federated_bundles, bundles, (td) => ownDomains.has(td.name));
    return { svids, bundles };
  } finally {
    for (const m of resp.svids) m.x509_svid_key.fill(0);
  }
}

/** Turns an `X509BundlesResponse` into a bundle set. */
export function parseX509BundlesResponse(resp: X509BundlesResponseMessage): X509BundleSet {
  const set = new X509BundleSet();
  parseBundleMap(resp.bundles, set);
  if (set.size === 0) throw badResponse('Workload API response carries no bundle');
  return set;
}

// ---------------------------------------------------------------------------------------------
// Calls

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 4 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024,
  'grpc.enable_retries': 0,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 5_000,
};

function newClient(ep: WorkloadEndpoint): grpc.Client {
  return new grpc.Client(ep.target, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
}

function securityMetadata(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(WORKLOAD_API_HEADER, WORKLOAD_API_HEADER_VALUE);
  return md;
}

/** Status codes after which a client must not retry (Workload API standard). */
function isFatal(code: grpc.status): boolean {
  return code === grpc.status.INVALID_ARGUMENT || code === grpc.status.UNIMPLEMENTED;
}

function statusName(code: grpc.status): string {
  return grpc.status[code] ?? String(code);
}

function fatalError(ep: WorkloadEndpoint, code: grpc.status): WorkloadApiError {
  return code === grpc.status.UNIMPLEMENTED
    ? new WorkloadApiError('workload_api_unimplemented', `Workload API at ${ep.address} does not implement the requested RPC`, { grpcCode: code })
    : new WorkloadApiError('workload_api_rejected', `Workload API at ${ep.address} rejected the request as invalid (InvalidArgument)`, { grpcCode: code });
}

function unavailableError(ep: WorkloadEndpoint, timeoutMs: number, last: grpc.status | undefined, cause?: unknown): WorkloadApiError {
  const lastText = last === undefined ? 'no answer' : `last status ${statusName(last)}`;
  return new WorkloadApiError(
    'workload_api_unavailable',
    `no Workload API answered with an X.509-SVID on ${ep.address} within ${timeoutMs} ms (${lastText}); is the agent running and is SPIFFE_ENDPOINT_SOCKET right?`,
    { grpcCode: last, cause },
  );
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
      if (isFatal(st.code)) finish(fatalError(ep, st.code));
      else finish(unavailableError(ep, timeoutMs, st.code === grpc.status.OK ? undefined : st.code));
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

// ---------------------------------------------------------------------------------------------
// The watching source

export interface WorkloadX509SourceOptions {
  /** Default: `SPIFFE_ENDPOINT_SOCKET` or `unix:///tmp/spire-agent/public/api.sock`. */
  endpoint?: string;
  /** How long `open` waits for the first SVID; undefined = forever (as SPIKE's servers do). */
  timeoutMs?: number;
  logger?: Logger;
  /** Reconnect backoff bounds; defaults 100 ms and 5 s. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

const SOURCE_DEFAULTS = { backoffInitialMs: 100, backoffMaxMs: 5_000 } as const;

/** Exponential backoff with "equal jitter": a delay in [d/2, d], d = min(max, initial·2^n). */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  const d = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  const half = Math.floor(d / 2);
  return half + randomInt(0, d - half + 1);
}

function fingerprint(ctx: X509Context): string {
  const h = createHash('sha256');
  for (const s of ctx.svids) {
    h.update(s.id.toString()).update('\0');
    for (const c of s.certificates) h.update(c.raw);
    h.update('\0');
  }
  for (const b of ctx.bundles.bundles()) {
    h.update(b.trustDomain.name).update('\0').update(b.toDer()).update('\0');
  }
  return h.digest('hex');
}

/**
 * An {@link X509Source} fed by the Workload API. Create it with {@link WorkloadX509Source.open}.
 * Events: `'update'` after each change of SVIDs or bundles; `'error'` (a
 * {@link WorkloadApiError}) for a response that could not be used or a non-retryable status —
 * only emitted when someone listens, otherwise logged; `'close'`.
 */
export class WorkloadX509Source extends EventEmitter implements X509Source {
  readonly endpoint: string;
  readonly #ep: WorkloadEndpoint;
  readonly #log: Logger;
  readonly #backoffInitialMs: number;
  readonly #backoffMaxMs: number;
  #client: grpc.Client | undefined;
  #call: grpc.ClientReadableStream<X509SvidResponseMessage> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #closed = false;
  #ctx: X509Context | undefined;
  #fingerprint = '';
  #lastStatus: grpc.status | undefined;
  #fatal: WorkloadApiError | undefined;
  #firstWaiter: { resolve: () => void; reject: (e: WorkloadApiError) => void } | undefined;

  private constructor(opts: WorkloadX509SourceOptions) {
    super();
    this.#ep = parseWorkloadEndpoint(opts.endpoint ?? workloadEndpointFromEnv());
    this.endpoint = this.#ep.address;
    this.#log = opts.logger ?? createLogger({ component: 'workload-api' });
    this.#backoffInitialMs = opts.backoffInitialMs ?? SOURCE_DEFAULTS.backoffInitialMs;
    this.#backoffMaxMs = opts.backoffMaxMs ?? SOURCE_DEFAULTS.backoffMaxMs;
  }

  /**
   * Connects and resolves once the first SVIDs and bundles have arrived. Rejects with
   * {@link WorkloadApiError}: `workload_api_unavailable` when nothing usable arrived within
   * `timeoutMs`; `workload_api_rejected` / `workload_api_unimplemented` at once on a
   * non-retryable status; `workload_api_endpoint_invalid` for a bad address.
   */
  static async open(opts: WorkloadX509SourceOptions = {}): Promise<WorkloadX509Source> {
    if (opts.timeoutMs !== undefined && !(Number.isFinite(opts.timeoutMs) && opts.timeoutMs >= 0)) {
      throw new RangeError('timeoutMs must be a non-negative number of milliseconds');
    }
    const src = new WorkloadX509Source(opts);
    const first = new Promise<void>((resolve, reject) => {
      src.#firstWaiter = { resolve, reject };
    });
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      const timeoutMs = opts.timeoutMs;
      timer = setTimeout(() => {
        const w = src.#firstWaiter;
        src.#firstWaiter = undefined;
        w?.reject(unavailableError(src.#ep, timeoutMs, src.#lastStatus));
      }, timeoutMs);
    }
    src.#connect();
    try {
      await first;
      return src;
    } catch (err) {
      src.close();
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  getX509Svid(): X509Svid {
    return this.#current().svids[0]!;
  }

  /** Every SVID of the latest response (the first is the default). */
  getX509Svids(): readonly X509Svid[] {
    return this.#current().svids;
  }

  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle | undefined {
    return this.#current().bundles.get(td);
  }

  /** The current bundles. A new set object replaces it on each update; do not mutate it. */
  bundleSet(): X509BundleSet {
    return this.#current().bundles;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Ends the stream and timers so the process can exit. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#dropCall();
    const w = this.#firstWaiter;
    this.#firstWaiter = undefined;
    w?.reject(new WorkloadApiError('workload_api_closed', 'Workload API source was closed'));
    this.emit('close');
    this.removeAllListeners();
  }

  #current(): X509Context {
    if (this.#closed) throw new SourceClosedError();
    if (!this.#ctx) throw new WorkloadApiError('workload_api_unavailable', 'Workload API source has no SVID yet');
    return this.#ctx;
  }

  #dropCall(): void {
    const call = this.#call;
    const client = this.#client;
    this.#call = undefined;
    this.#client = undefined;
    call?.cancel();
    client?.close();
  }

  #connect(): void {
    if (this.#closed || this.#fatal) return;
    this.#dropCall();
    const client = newClient(this.#ep);
    const call = client.makeServerStreamRequest(
      FETCH_X509_SVID.path,
      FETCH_X509_SVID.requestSerialize,
      FETCH_X509_SVID.responseDeserialize,
      {},
      securityMetadata(),
    );
    this.#client = client;
    this.#call = call;
    call.on('data', (msg: X509SvidResponseMessage) => {
      if (this.#call !== call) return;
      this.#onResponse(msg);
    });
    call.on('error', () => { /* handled in 'status' */ });
    call.on('status', (st: grpc.StatusObject) => {
      if (this.#call !== call || this.#closed) return;
      this.#onStatus(st);
    });
  }

  #onResponse(msg: X509SvidResponseMessage): void {
    let ctx: X509Context;
    try {
      ctx = parseX509SvidResponse(msg);
    } catch (err) {
      const e = err instanceof WorkloadApiError ? err : badResponse('Workload API response cannot be used', err);
      this.#log.warn({ endpoint: this.endpoint, code: e.code, reason: e.message }, 'ignoring Workload API response');
      this.#report(e);
      return;
    }
    this.#attempt = 0;
    this.#lastStatus = undefined;
    const fp = fingerprint(ctx);
    const changed = fp !== this.#fingerprint;
    this.#ctx = ctx;
    this.#fingerprint = fp;
    const w = this.#firstWaiter;
    this.#firstWaiter = undefined;
    if (w) {
      this.#log.info({ endpoint: this.endpoint, spiffeId: ctx.svids[0]!.id.toString() }, 'received X.509-SVID');
      w.resolve();
    } else if (changed) {
      this.#log.debug({ endpoint: this.endpoint, spiffeId: ctx.svids[0]!.id.toString() }, 'X.509-SVID or bundles updated');
    }
    if (changed) this.emit('update');
  }

  #onStatus(st: grpc.StatusObject): void {
    this.#call = undefined;
    this.#client?.close();
    this.#client = undefined;
    this.#lastStatus = st.code === grpc.status.OK ? undefined : st.code;
    if (isFatal(st.code)) {
      const e = fatalError(this.#ep, st.code);
      this.#fatal = e;
      this.#log.error({ endpoint: this.endpoint, status: statusName(st.code) }, 'Workload API refused the stream; not retrying');
      const w = this.#firstWaiter;
      this.#firstWaiter = undefined;
      if (w) w.reject(e);
      else this.#report(e);
      return;
    }
    const delay = backoffDelay(this.#attempt, this.#backoffInitialMs, this.#backoffMaxMs);
    const level = this.#attempt === 0 ? 'warn' : 'debug';
    this.#log[level]({ endpoint: this.endpoint, status: statusName(st.code), retryInMs: delay }, 'Workload API stream ended; reconnecting');
    this.#attempt++;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#connect();
    }, delay);
  }

  /** Emits 'error' only when someone listens (an unheard 'error' would throw). */
  #report(e: WorkloadApiError): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }
}
