/**
 * HTTP transport of the SDK: POSTs to SPIKE Nexus over one shared {@link HttpDispatcher}
 * (keep-alive, mTLS in production: the `node:https` client of `NexusClient.connect`, or any
 * undici `Dispatcher` given to `NexusClient.create`) with fail-over across several Nexus URLs.
 *
 * Fail-over rules (issue 8 point 3, issue 18):
 * - The next URL is tried for **idempotent** calls (reads, lists, metadata, cipher,
 *   commitments) after a connection failure, a timeout before the
 *   response, or a 502/503/504 answer.
 * - A write (put with or without `cas`, delete, undelete, destroy, policy put/delete)
 *   is re-sent to the next URL in exactly two cases: its connection could not be opened at
 *   all (refused, unreachable, connect timeout, no such socket, closed by the server during
 *   the mTLS dial: not one byte was sent), or
 *   the server answered 503 with `"outcome":"not_applied"` (it guarantees nothing was
 *   written: the database was unreachable before COMMIT, the deadline passed first, or the
 *   policy check could not be made). A 503 with `"outcome":"unknown"` (COMMIT sent, answer
 *   lost), or without `outcome`, and a connection that broke after sending, are reported
 *   to the caller, never re-sent — the write may have been applied.
 * - Instance order (instances.ts): the last instance that answered is tried first; one that
 *   fails is cooled down and tried last until it answers again.
 * - A server that fails the TLS trust check (`tls_peer_rejected`: its SPIFFE ID is not Nexus,
 *   or its chain does not lead to the Workload API bundle) is never failed over: that is a
 *   security error, reported as such.
 * A call that got no HTTP answer fails with `attempts`: each URL tried and its cause class
 * (`failure.ts`), so the error names where it went and why it failed.
 * - A dial the server closed (its per-address handshake budget, see HANDSHAKE_CLOSED_RETRIES)
 *   is tried again on the same URL when no other is left, any call, at most twice.
 * - While Nexus is unavailable, the call goes round every URL again after a jittered pause
 *   (50-100 ms, doubling to 0.5-1 s; the last ends with the window), for up to
 *   `retryUnavailableMs` from its start and within its deadline; `close()` ends the wait with
 *   `sdk_closed`. Unavailable means that in the round just made every URL either failed its
 *   dial (nothing sent) because nothing listens there (refused, host not found, host
 *   unreachable: a restarting Nexus, a pod not yet in DNS) or answered 502/503/504 for a call
 *   that may move on (a read, or a write answered `not_applied`). Nothing was applied, so
 *   writes are retried too. Any other failure in the round ends the call as above; when the
 *   window ends, the call fails with the last round's answer or attempts.
 * - Streaming bodies (a `Readable`) go to one URL only; they cannot be replayed.
 * One deadline (`timeoutMs`) covers all attempts of a JSON call.  A caller's `AbortSignal` ends the call at once with the signal's
 * reason: before anything is sent if it is already aborted, else mid-request with no fail-over.
 *
 * Response bodies are read with a byte cap. Non-200 answers become `NexusApiError` with the
 * status-derived code and the body's `err` code when there is one (JSON `{"err":…}` or a
 * plain-text code line); nothing else of a body is kept.
 */
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay } from '../lib/index.js';
import { OCTET_STREAM } from '../protocol/curve-free.js';
import { errorFromResponse, readCapped } from './answer-error.js';
import { NexusApiError, SdkUsageError, type RequestTarget } from './errors.js';
import { classifyFailure, classifyFailureCause, type FailedAttempt, type FailureClass } from './failure.js';
import { InstanceOrder } from './instances.js';
import type { NexusUrl } from './urls.js';

/** One request as the transport makes it (a subset of undici's `Dispatcher.request` options). */
export interface HttpRequest {
  origin: string;
  path: string;
  method: 'POST';
  body: Buffer | Readable;
  headers: Record<string, string>;
  signal?: AbortSignal;
  /** Whether the HTTP layer may replay the request itself (always false here). */
  idempotent?: boolean;
  headersTimeout?: number;
  bodyTimeout?: number;
}

/**
 * What the SDK needs of an HTTP client: undici's `Dispatcher` fits, and so does the
 * `node:https` mTLS client `NexusClient.connect` uses (`createMtlsHttpsClient`).
 */
export interface HttpDispatcher {
  request(r: HttpRequest): Promise<{ statusCode: number; body: Readable }>;
  close(): Promise<void>;
}

type ResponseData = Awaited<ReturnType<HttpDispatcher['request']>>;

interface TransportOptions {
  urls: NexusUrl[];
  dispatcher: HttpDispatcher;
  /** Deadline of a whole JSON call, all attempts included. */
  timeoutMs: number;
  /** Cap on a JSON response body. */
  maxResponseBytes: number;
  /** How long a call goes on trying while every URL is unavailable (0: fail at once). */
  retryUnavailableMs: number;
}

/**
 * A server closes handshakes past its per-address budget (a client process with many
 * connections opening at once, or many processes on one host); such a dial is tried again on
 * the same URL, after a short jittered pause (20-40 ms, then 40-80 ms), this many times within
 * the call's deadline.
 */
const HANDSHAKE_CLOSED_RETRIES = 2;
const HANDSHAKE_CLOSED_BACKOFF = { initialMs: 40, maxMs: 80, jitter: 'equal' } as const;

/** Pauses between rounds while Nexus is unavailable (`retryUnavailableMs`): 50-100 ms, doubling to 0.5-1 s. */
const UNAVAILABLE_BACKOFF = { initialMs: 100, maxMs: 1000, jitter: 'equal' } as const;

/** Failures that mean nothing listens at a URL (yet): a restarting Nexus, a pod not yet in DNS. */
const UNAVAILABLE_CLASSES: ReadonlySet<FailureClass> = new Set(['connection_refused', 'host_not_found', 'host_unreachable']);

const RETRY_STATUSES = new Set([502, 503, 504]);

interface PostOptions {
  idempotent: boolean;
  contentType?: string;
  /**
   * Wait this long for the answer's headers instead of the dispatcher's response-header
   * timeout: for operations Nexus answers only when they are done (a sharing move).
   */
  headersTimeoutMs?: number;
  /** The caller's signal (see the module comment). */
  signal?: AbortSignal | undefined;
}

/** Throws the caller's abort reason when `signal` is aborted. */
function throwIfAborted(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}

export class Transport {
  private readonly instances: InstanceOrder;
  /** Aborted by `markClosed()`: ends a pause between rounds (in-flight requests are the dispatcher's). */
  private readonly closing = new AbortController();

  private get closed(): boolean {
    return this.closing.signal.aborted;
  }

  constructor(private readonly opts: TransportOptions) {
    this.instances = new InstanceOrder(opts.urls.length);
  }

  get urls(): readonly NexusUrl[] {
    return this.opts.urls;
  }

  /** The whole-request deadline of every call. */
  get timeoutMs(): number {
    return this.opts.timeoutMs;
  }

  /** The configured URL of instance `i` (origin + base path), for error messages. */
  private display(i: number): string {
    const u = this.opts.urls[i]!;
    return `${u.origin}${u.basePath}`;
  }

  private target(i: number, route: string, action: string | undefined): { origin: string; path: string } {
    const u = this.opts.urls[i]!;
    const q = action ? `?action=${encodeURIComponent(action)}` : '';
    return { origin: u.origin, path: `${u.basePath}${route}${q}` };
  }

  /** Where a request went, for errors: no secret is ever in it (paths travel in bodies). */
  private at(i: number, route: string, action: string | undefined): RequestTarget {
    return { url: this.display(i), route: action ? `${route}?action=${encodeURIComponent(action)}` : route };
  }

  /**
   * POSTs a fully built body; resolves with the raw 200 body (caller parses it and owns the
   * buffer), or throws `NexusApiError`.
   */
  async postBytes(route: string, action: string | undefined, body: Buffer, o: PostOptions): Promise<Buffer> {
    throwIfAborted(o.signal);
    if (this.closed) throw new SdkUsageError('sdk_closed');
    const deadline = AbortSignal.timeout(this.opts.timeoutMs);
    const signal = o.signal ? AbortSignal.any([deadline, o.signal]) : deadline;
    const started = performance.now();
    let order = this.instances.order();
    let last: NexusApiError | undefined;
    let attempts: FailedAttempt[] = [];
    let sameUrlRetries = 0;
    let rounds = 0;
    const waits = { paused: false }; // set by the first pause between rounds, even one the deadline cut short
    const retried = (e: NexusApiError): NexusApiError => (waits.paused ? e.afterRetries(performance.now() - started) : e);
    let roundUnavailable = true; // every attempt of this round so far: nothing listening, or a 503 that applied nothing
    for (let k = 0; k < order.length; k++) {
      if (k === 0) roundUnavailable = true;
      const i = order[k]!;
      const isLast = k === order.length - 1;
      const t = this.target(i, route, action);
      let res: ResponseData;
      try {
        res = await this.opts.dispatcher.request({
          origin: t.origin,
          path: t.path,
          method: 'POST',
          body,
          headers: { 'content-type': o.contentType ?? 'application/json', accept: 'application/json' },
          signal,
          idempotent: false, // never let the HTTP layer itself replay a POST
          ...(o.headersTimeoutMs !== undefined ? { headersTimeout: o.headersTimeoutMs } : {}),
        });
      } catch (e) {
        throwIfAborted(o.signal);
        const kind = classifyFailure(e, signal);
        if (this.closed && kind === 'pre_send') throw new SdkUsageError('sdk_closed'); // close() cut it before sending
        const failure = classifyFailureCause(e, signal);
        attempts.push({ url: this.display(i), failure });
        const at = this.at(i, route, action);
        if (kind === 'peer_rejected') throw retried(new NexusApiError('tls_peer_rejected', { cause: e, attempts, at }));
        if (isLast && kind === 'pre_send' && failure.class === 'connection_closed' && sameUrlRetries < HANDSHAKE_CLOSED_RETRIES) {
          const paused = await sleep(backoffDelay(sameUrlRetries++, HANDSHAKE_CLOSED_BACKOFF), true, { signal }).catch(() => false);
          if (paused) {
            k--; // the same URL again: the server closed the handshake, nothing was sent
            continue;
          }
          throwIfAborted(o.signal); // the caller gave up during the pause: its reason, as always
        }
        last = new NexusApiError('net_peer_connection', { cause: e, attempts, at });
        if (kind !== 'aborted') this.instances.failed(i);
        // Nothing was sent (the dial failed), and because nothing listens there.
        if (kind !== 'pre_send' || !UNAVAILABLE_CLASSES.has(failure.class)) roundUnavailable = false;
        if (isLast && kind !== 'aborted' && roundUnavailable && await this.pauseForNextRound(rounds, started, signal, o.signal, waits)) {
          [order, attempts, k, rounds] = [this.instances.order(), [], -1, rounds + 1]; // every URL again, from the preferred one
          continue;
        }
        if (kind === 'aborted' || isLast) throw retried(last);
        if (kind === 'pre_send' || o.idempotent) continue;
        throw retried(last);
      }
      if (res.statusCode === 200) {
        this.instances.succeeded(i);
        try {
          return await readCapped(res.body, this.opts.maxResponseBytes, 200, this.at(i, route, action));
        } catch (e) {
          throwIfAborted(o.signal);
          throw e;
        }
      }
      const err = await errorFromResponse(res, this.at(i, route, action));
      throwIfAborted(o.signal);
      if (!RETRY_STATUSES.has(res.statusCode)) {
        this.instances.succeeded(i);
        throw err;
      }
      this.instances.failed(i);
      const nothingApplied = o.idempotent || err.outcome === 'not_applied';
      if (!isLast && nothingApplied) {
        last = err;
        continue;
      }
      if (isLast && nothingApplied && roundUnavailable && await this.pauseForNextRound(rounds, started, signal, o.signal, waits)) {
        [order, attempts, k, rounds] = [this.instances.order(), [], -1, rounds + 1];
        continue;
      }
      throw retried(err);
    }
    throw last ?? new NexusApiError('net_peer_connection');
  }

  /**
   * POSTs a stream (octet-stream mode) to the preferred URL and resolves with the response
   * body stream on 200. No fail-over: a stream body cannot be replayed. When `signal` aborts
   * after the answer began, the answer stream is destroyed with the signal's reason (what its
   * reader sees) and a stream `body` is destroyed too, as the request is (the caller's own
   * Readable, e.g. a file stream: it is not read any further).
   */
  async postStream(route: string, body: Readable | Buffer, o: { headersTimeoutMs: number; bodyTimeoutMs: number; signal?: AbortSignal | undefined }): Promise<Readable> {
    throwIfAborted(o.signal);
    if (this.closed) throw new SdkUsageError('sdk_closed');
    const first = this.instances.order()[0]!;
    const t = this.target(first, route, undefined);
    // The dispatcher gets its own signal, aborted after ours has destroyed the answer stream with
    // the caller's reason (else the reader would see the socket's reset instead).
    const inner = o.signal ? new AbortController() : undefined;
    let answer: Readable | undefined;
    const onAbort = (): void => {
      const reason: unknown = o.signal!.reason;
      try {
        // A reader that only pipes or listens for 'data' has no 'error' listener: the error must
        // not become an uncaught exception (its reader still sees it).
        answer?.on('error', () => undefined).destroy(reason as Error);
        const input = body as { destroy?: unknown };
        if (typeof input.destroy === 'function') (body as Readable).destroy();
      } finally {
        inner!.abort(reason);
      }
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    let res: ResponseData;
    try {
      res = await this.opts.dispatcher.request({
        origin: t.origin,
        path: t.path,
        method: 'POST',
        body,
        headers: { 'content-type': OCTET_STREAM, accept: OCTET_STREAM },
        idempotent: false,
        headersTimeout: o.headersTimeoutMs,
        bodyTimeout: o.bodyTimeoutMs,
        ...(inner ? { signal: inner.signal } : {}),
      });
    } catch (e) {
      o.signal?.removeEventListener('abort', onAbort);
      throwIfAborted(o.signal);
      const attempts = [{ url: this.display(first), failure: classifyFailureCause(e) }];
      const at = this.at(first, route, undefined);
      if (classifyFailure(e) === 'peer_rejected') throw new NexusApiError('tls_peer_rejected', { cause: e, attempts, at });
      throw new NexusApiError('net_peer_connection', { cause: e, attempts, at });
    }
    if (res.statusCode !== 200) {
      answer = res.body; // an abort while the error body is read ends that read too
      // The error body is read under the headers' deadline: a Nexus that drips it (4 KiB at
      // most, each byte inside the body timeout) must not hold the call for hours.
      const cut = setTimeout(() => res.body.destroy(), o.headersTimeoutMs);
      try {
        const refused = await errorFromResponse(res, this.at(first, route, undefined));
        throwIfAborted(o.signal);
        throw refused;
      } finally {
        clearTimeout(cut);
        o.signal?.removeEventListener('abort', onAbort);
      }
    }
    answer = res.body;
    if (o.signal) answer.once('close', () => o.signal!.removeEventListener('abort', onAbort));
    return answer;
  }

  /**
   * Before another round over every URL while Nexus is unavailable: pauses (never past the end
   * of `retryUnavailableMs` from the call's start) and answers true when another round may
   * start; false when the window has passed or the deadline ended the pause. The caller's own
   * abort throws its reason; `close()` during the pause throws `sdk_closed`.
   */
  private async pauseForNextRound(round: number, started: number, signal: AbortSignal, callerSignal: AbortSignal | undefined, waits: { paused: boolean }): Promise<boolean> {
    const left = this.opts.retryUnavailableMs - (performance.now() - started);
    if (left <= 0 || this.closed) return false;
    waits.paused = true;
    const pause = Math.min(backoffDelay(round, UNAVAILABLE_BACKOFF), left);
    const paused = await sleep(pause, true, { signal: AbortSignal.any([signal, this.closing.signal]) }).catch(() => false);
    if (this.closed) throw new SdkUsageError('sdk_closed');
    if (!paused) throwIfAborted(callerSignal);
    return paused;
  }

  markClosed(): void {
    this.closing.abort();
  }
}
