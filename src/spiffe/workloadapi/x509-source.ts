/**
 * {@link WorkloadX509Source} (go-spiffe's `workloadapi.X509Source`): watches `FetchX509SVID`
 * and always holds the latest X.509-SVIDs (the first is the default) and bundles (each SVID's
 * trust-domain bundle plus the federated ones).
 *
 * A fatal status (errors.ts) is reported and never retried; every other end of the stream is
 * retried with capped exponential backoff and equal jitter (src/lib/backoff.ts). The backoff
 * starts over only when a stream that delivered a response ends at least the longest backoff
 * delay after it was opened: an agent that answers and then drops every stream at once is
 * asked less and less often, down to once per longest delay (5 s), not every 100 ms. Ends and
 * unusable responses are logged at warn when they begin, then at most once a minute each (else
 * at debug), so a flapping or garbling agent neither floods the log nor drops out of it. A
 * response that cannot be parsed is reported and skipped; the previous values stay in use.
 *
 * A stream that goes silent is also ended and retried: a hung agent, or a connection whose far
 * end is gone without a word (a `tcp://` endpoint), would otherwise leave the source serving an
 * SVID until it expires. Silent means no message within `stallTimeoutMs` of connecting, or no
 * message by the time three quarters of the current SVID's remaining lifetime have passed
 * (agents usually rotate at half; a new stream just gets the current SVID again). When a new
 * stream brings nothing new (an agent serving an expired SVID, a clock far ahead), the wait
 * doubles each time, up to 5 minutes, so a stuck agent is not asked every few seconds.
 *
 * Nothing here depends on which agent answers: SPIRE and spike-agent look the same.
 */
import { EventEmitter } from 'node:events';
import { Backoff, createLogger, type Logger } from '../../lib/index.js';
import type { X509Bundle, X509BundleSet } from '../bundle.js';
import type { TrustDomain } from '../id.js';
import { SourceClosedError, type X509Source } from '../source.js';
import type { X509Svid } from '../svid.js';
import { assertDefaultTrusted, parseWorkloadEndpoint, workloadEndpointFromEnv, type WorkloadEndpoint } from './endpoint.js';
import { badResponse, fatalError, GRPC_STATUS, isFatal, statusName, unavailableError, WorkloadApiError } from './errors.js';
import { serverStream, type StreamCall } from './h2call.js';
import { decodeX509SvidResponse } from './messages.js';
import { WORKLOAD_API_ENDPOINT_ENV, type X509SvidResponseMessage } from './proto.js';
import { parseX509SvidResponse, type X509Context } from './response.js';
import { fingerprint, MAX_TIMER_MS, silenceWaitMs } from './x509-silence.js';
import { SOURCE_DEFAULTS, type WorkloadX509SourceOptions } from './x509-source-options.js';

export type { WorkloadX509SourceOptions };


/**
 * `FetchX509SVID`, one server-streaming call at a time over node:http2 (h2call.ts), each
 * message decoded by the strict protobuf decoder of messages.ts (the one-shot client's): a
 * watching process (every SPIKE server, every SDK client) loads neither grpc-js nor protobufjs
 * (issue 17: an idle Keeper loads what it uses). The received message is zeroed once decoded
 * (it holds the private key); a message that does not decode ends the call with `INTERNAL`,
 * which is retried like any other end of the stream.
 */
const FETCH_X509_SVID = '/SpiffeWorkloadAPI/FetchX509SVID';

/** A silent stream, an ended one and an unusable response are each logged at warn at most this often (else at debug). */
const WARN_INTERVAL_MS = 60_000;

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
  readonly #backoff: Backoff;
  #call: StreamCall | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Ends the current call if it stays silent (module doc). */
  #stallTimer: NodeJS.Timeout | undefined;
  readonly #stallTimeoutMs: number;
  readonly #beforeDial: (() => boolean) | undefined;
  /** When each kind of trouble was last logged at warn (performance.now()); see {@link #level}. */
  readonly #warnedAt = new Map<'silent' | 'ended' | 'bad', number>();
  /** Silent streams in a row since the last response that changed something. */
  #stallStreak = 0;
  /** When the current call began (performance.now()), and whether it delivered a usable response. */
  #callStarted = 0;
  #callDelivered = false;
  /** How long a call that delivered must have lasted for the backoff to start over: the longest delay. */
  readonly #stableMs: number;
  #closed = false;
  #ctx: X509Context | undefined;
  #fingerprint = '';
  #lastStatus: number | undefined;
  #fatal: WorkloadApiError | undefined;
  #firstWaiter: { resolve: () => void; reject: (e: WorkloadApiError) => void } | undefined;

  private constructor(opts: WorkloadX509SourceOptions) {
    super();
    this.#ep = parseWorkloadEndpoint(opts.endpoint ?? workloadEndpointFromEnv());
    this.endpoint = this.#ep.address;
    this.#log = opts.logger ?? createLogger({ component: 'workload-api' });
    this.#stallTimeoutMs = opts.stallTimeoutMs ?? SOURCE_DEFAULTS.stallTimeoutMs;
    // No endpoint given and none in the environment: the default, judged before every dial.
    const implicit = opts.endpoint === undefined && !process.env[WORKLOAD_API_ENDPOINT_ENV];
    this.#beforeDial = opts.beforeDial ?? (implicit ? () => assertDefaultTrusted() : undefined);
    this.#stableMs = opts.backoffMaxMs ?? SOURCE_DEFAULTS.backoffMaxMs;
    this.#backoff = new Backoff({
      initialMs: opts.backoffInitialMs ?? SOURCE_DEFAULTS.backoffInitialMs,
      maxMs: this.#stableMs,
      jitter: 'equal',
    });
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
    for (const k of ['stallTimeoutMs', 'backoffInitialMs', 'backoffMaxMs'] as const) {
      const v = opts[k];
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new RangeError(`${k} must be a positive number of milliseconds`);
    }
    if ((opts.backoffInitialMs ?? SOURCE_DEFAULTS.backoffInitialMs) > (opts.backoffMaxMs ?? SOURCE_DEFAULTS.backoffMaxMs)) {
      throw new RangeError('backoffInitialMs must not be above backoffMaxMs');
    }
    opts.signal?.throwIfAborted();
    const src = new WorkloadX509Source(opts);
    const first = new Promise<void>((resolve, reject) => {
      src.#firstWaiter = { resolve, reject };
    });
    const onAbort = (): void => {
      const w = src.#firstWaiter;
      src.#firstWaiter = undefined;
      w?.reject(opts.signal?.reason);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs !== undefined) {
      const timeoutMs = opts.timeoutMs;
      timer = setTimeout(() => {
        const w = src.#firstWaiter;
        src.#firstWaiter = undefined;
        w?.reject(unavailableError(src.#ep.address, timeoutMs, src.#lastStatus));
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
      opts.signal?.removeEventListener('abort', onAbort);
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
    this.#armStall(undefined);
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
    this.#call = undefined;
    call?.cancel();
  }

  #connect(): void {
    if (this.#closed || this.#fatal) return;
    this.#dropCall();
    if (this.#beforeDial !== undefined) {
      let ready: boolean;
      try {
        ready = this.#beforeDial();
      } catch (err) {
        const e = err instanceof WorkloadApiError ? err : new WorkloadApiError('workload_api_untrusted_default', 'Workload API endpoint refused', { cause: err });
        this.#fatal = e;
        this.#log.error({ endpoint: this.endpoint, code: e.code, reason: e.message }, 'Workload API endpoint refused; not connecting');
        const w = this.#firstWaiter;
        this.#firstWaiter = undefined;
        if (w) w.reject(e);
        else this.#report(e);
        return;
      }
      if (!ready) {
        this.#onStatus(GRPC_STATUS.UNAVAILABLE);
        return;
      }
    }
    // Handlers run only from later event-loop work (serverStream's contract), so `call` is set.
    const call: StreamCall = serverStream(this.#ep, FETCH_X509_SVID, {
      onMessage: (bytes) => {
        if (this.#call !== call) {
          bytes.fill(0);
          return;
        }
        let msg: X509SvidResponseMessage;
        try {
          msg = decodeX509SvidResponse(bytes);
        } catch {
          call.cancel();
          this.#onStatus(GRPC_STATUS.INTERNAL);
          return;
        } finally {
          bytes.fill(0);
        }
        this.#onResponse(msg);
      },
      onEnd: (status) => {
        if (this.#call !== call || this.#closed) return;
        this.#onStatus(status);
      },
    });
    this.#call = call;
    this.#callStarted = performance.now();
    this.#callDelivered = false;
    this.#armStall(this.#stallTimeoutMs);
  }

  /** (Re)arms the silence check of the current call; undefined disarms it. */
  #armStall(ms: number | undefined): void {
    if (this.#stallTimer !== undefined) clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    if (ms === undefined) return;
    const call = this.#call;
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = undefined;
      if (this.#closed || call === undefined || this.#call !== call) return;
      this.#log[this.#level('silent')]({ endpoint: this.endpoint, silentMs: ms }, 'Workload API stream silent; reconnecting');
      this.#stallStreak += 1;
      this.#dropCall();
      this.#onStatus(GRPC_STATUS.UNAVAILABLE, true);
    }, Math.min(ms, MAX_TIMER_MS));
    this.#stallTimer.unref();
  }

  #onResponse(msg: X509SvidResponseMessage): void {
    let ctx: X509Context;
    try {
      ctx = parseX509SvidResponse(msg);
    } catch (err) {
      const e = err instanceof WorkloadApiError ? err : badResponse('Workload API response cannot be used', err);
      this.#log[this.#level('bad')]({ endpoint: this.endpoint, code: e.code, reason: e.message }, 'ignoring Workload API response');
      this.#report(e);
      return;
    }
    this.#callDelivered = true;
    this.#lastStatus = undefined;
    const left = ctx.svids[0]!.notAfter.getTime() - Date.now();
    const fp = fingerprint(ctx);
    const changed = fp !== this.#fingerprint;
    if (changed) this.#stallStreak = 0;
    this.#armStall(silenceWaitMs(left, this.#stallStreak, this.#stallTimeoutMs));
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

  /**
   * The call ended with gRPC status `code`: fatal, or retried after the backoff. `quiet`: the
   * silence check ended it and has logged that already.
   */
  #onStatus(code: number, quiet = false): void {
    this.#call = undefined;
    this.#armStall(undefined);
    this.#lastStatus = code === GRPC_STATUS.OK ? undefined : code;
    if (isFatal(code)) {
      const e = fatalError(this.#ep.address, code);
      this.#fatal = e;
      this.#log.error({ endpoint: this.endpoint, status: statusName(code) }, 'Workload API refused the stream; not retrying');
      const w = this.#firstWaiter;
      this.#firstWaiter = undefined;
      if (w) w.reject(e);
      else this.#report(e);
      return;
    }
    if (this.#callDelivered && performance.now() - this.#callStarted >= this.#stableMs) this.#backoff.reset();
    this.#callDelivered = false;
    // The first end after the backoff started over begins a new incident: always at warn.
    const level = quiet ? 'debug' : this.#level('ended', this.#backoff.attempt === 0);
    const delay = this.#backoff.next();
    this.#log[level]({ endpoint: this.endpoint, status: statusName(code), retryInMs: delay }, 'Workload API stream ended; reconnecting');
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#connect();
    }, delay);
  }

  /**
   * `warn` for the first `kind` of trouble in {@link WARN_INTERVAL_MS} (or when `fresh`: a new
   * incident), else `debug`. Not lib's LogThrottle: its later lines are summaries at the end of
   * its interval, and a new incident (a stable stream that ended) would not get a line of its own.
   */
  #level(kind: 'silent' | 'ended' | 'bad', fresh = false): 'warn' | 'debug' {
    const now = performance.now();
    if (!fresh && now - (this.#warnedAt.get(kind) ?? -Infinity) < WARN_INTERVAL_MS) return 'debug';
    this.#warnedAt.set(kind, now);
    return 'warn';
  }

  /** Emits 'error' only when someone listens (an unheard 'error' would throw). */
  #report(e: WorkloadApiError): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }
}
