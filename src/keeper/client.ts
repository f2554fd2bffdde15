/**
 * Client side of the Keeper API, used by Nexus (recovery, re-push, status probe, rollback
 * anchor) and Bootstrap.
 *
 * Every call goes over SPIFFE mTLS with a server predicate (a Keeper ID), has a deadline,
 * and reads at most `maxResponseBytes` of the answer (a hostile Keeper sending 10 MB or
 * nothing at all costs a bounded amount of memory and time; FI-06). Share
 * values in requests and responses are secrets: request buffers are wiped after sending,
 * decoded values are returned to the caller, who wipes them.
 */
import {
  AnswerTooLargeError, certTimeCause, clockSkewHint, createMtlsHttpsClient, readAnswer, type Authorizer, type MtlsHttpsClient, type MtlsResponse, type X509Source,
} from '../spiffe/index.js';
import { SpikeError } from '../lib/index.js';
import { decodeShareBody, encodeShareMessage, PATHS, type WireShare } from '../protocol/index.js';
import { decodeKeeperStatus, type KeeperStatus } from './status.js';

export class KeeperCallError extends SpikeError {
  readonly status: number | undefined;
  /**
   * `keeper_unreachable` because this host refused the Keeper's SVID for its dates
   * (`CERT_HAS_EXPIRED`, `svid_not_yet_valid`, …: ENV-03), else undefined.
   */
  readonly certTime: string | undefined;
  constructor(code: 'keeper_unreachable' | 'keeper_bad_status' | 'keeper_bad_response' | 'keeper_response_too_large' | 'keeper_not_configured', status?: number, options?: { cause?: unknown }) {
    const certTime = code === 'keeper_unreachable' ? certTimeCause(options?.cause) : undefined;
    super(code, clockSkewHint('server', certTime) ?? {
      keeper_not_configured: 'no share is sent to a Keeper URL outside this process\'s configured Keeper list',
      keeper_unreachable: 'the Keeper could not be reached or did not answer in time',
      keeper_bad_status: 'the Keeper answered with an error status',
      keeper_bad_response: 'the Keeper answered with a malformed share message',
      keeper_response_too_large: 'the Keeper answered with an oversized body',
    }[code], options);
    this.status = status;
    this.certTime = certTime;
  }
}

/**
 * Log fields for a failed Keeper call beyond its code: the certificate-date verdict and the
 * clock-skew hint (ENV-03), so a Nexus whose clock is off says so instead of only
 * "unreachable". Empty for every other failure.
 */
export function keeperFailureFields(err: unknown): { certTime?: string; hint?: string } {
  if (!(err instanceof KeeperCallError) || err.certTime === undefined) return {};
  return { certTime: err.certTime, hint: err.message };
}

interface KeeperClientOptions {
  source: X509Source;
  authorizeKeeper: Authorizer;
  /** Deadline for one call, connection included; default 5 s. */
  timeoutMs?: number;
  /** Largest response body read; default 16 KiB. */
  maxResponseBytes?: number;
  /**
   * The only Keeper URLs a share may be sent to: this process's configured Keepers. A list
   * read from the database (a sharing record, even a validly tagged old one put back) can then
   * never make it send a share anywhere else. Reading shares and status is not restricted.
   */
  shareRecipients: readonly string[];
}

export class KeeperClient {
  readonly #http: MtlsHttpsClient;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #recipients: ReadonlySet<string>;

  constructor(opts: KeeperClientOptions) {
    this.#recipients = new Set(opts.shareRecipients);
    this.#timeoutMs = opts.timeoutMs ?? 5000;
    this.#maxBytes = opts.maxResponseBytes ?? 16 * 1024;
    // Node's own HTTPS client (no undici: Nexus and Bootstrap start without loading it).
    this.#http = createMtlsHttpsClient({
      source: opts.source,
      authorizeServer: opts.authorizeKeeper,
      connections: 2,
      connectTimeoutMs: this.#timeoutMs,
      headersTimeoutMs: this.#timeoutMs,
      bodyTimeoutMs: this.#timeoutMs,
    });
  }

  /** POST /v1/store/shard: the Keeper's share (caller wipes `value`). */
  async fetchShare(baseUrl: string): Promise<WireShare> {
    const { status, body } = await this.#post(baseUrl + PATHS.keeperShard, Buffer.from('{}'));
    try {
      if (status !== 200) throw new KeeperCallError('keeper_bad_status', status);
      try {
        return decodeShareBody(body);
      } catch (e) {
        throw new KeeperCallError('keeper_bad_response', status, { cause: e });
      }
    } finally {
      body.fill(0);
    }
  }

  /** True when `baseUrl` is one of the configured Keepers, the only ones sent shares. */
  mayReceiveShares(baseUrl: string): boolean {
    return this.#recipients.has(baseUrl);
  }

  /**
   * POST /v1/store/contribute. Resolves on 200; a 409 or any other status throws with `status`;
   * a URL outside the configured Keepers throws `keeper_not_configured` before anything is sent.
   */
  async contribute(baseUrl: string, share: WireShare): Promise<void> {
    if (!this.mayReceiveShares(baseUrl)) throw new KeeperCallError('keeper_not_configured');
    const payload = encodeShareMessage(share, false);
    try {
      const { status, body } = await this.#post(baseUrl + PATHS.keeperContribute, payload);
      body.fill(0);
      if (status !== 200) throw new KeeperCallError('keeper_bad_status', status);
    } finally {
      payload.fill(0);
    }
  }

  /** POST /v1/store/status: what the Keeper holds (never a share value); `timeoutMs` bounds this call. */
  async status(baseUrl: string, timeoutMs?: number): Promise<KeeperStatus> {
    const { status, body } = await this.#post(baseUrl + PATHS.keeperStatus, Buffer.from('{}'), timeoutMs);
    if (status !== 200) throw new KeeperCallError('keeper_bad_status', status);
    try {
      return decodeKeeperStatus(body);
    } catch (e) {
      throw new KeeperCallError('keeper_bad_response', status, { cause: e });
    }
  }

  /** POST /v1/store/anchor: hands the Keeper Nexus's rollback anchor (opaque bytes). */
  async putAnchor(baseUrl: string, anchor: Uint8Array, timeoutMs?: number): Promise<void> {
    const payload = Buffer.from(JSON.stringify({ anchor: Buffer.from(anchor).toString('base64') }));
    const { status } = await this.#post(baseUrl + PATHS.keeperAnchor, payload, timeoutMs);
    if (status !== 200) throw new KeeperCallError('keeper_bad_status', status);
  }

  async close(): Promise<void> {
    await this.#http.close();
  }

  async #post(url: string, payload: Buffer, timeoutMs?: number): Promise<{ status: number; body: Buffer }> {
    // One deadline for the whole call: connection, answer and body.
    const signal = AbortSignal.timeout(Math.min(timeoutMs ?? this.#timeoutMs, this.#timeoutMs));
    let res: MtlsResponse;
    try {
      const u = new URL(url);
      res = await this.#http.request({
        origin: u.origin,
        path: u.pathname + u.search,
        method: 'POST',
        body: payload,
        headers: { 'content-type': 'application/json' },
        signal,
      });
    } catch (e) {
      throw new KeeperCallError('keeper_unreachable', undefined, { cause: e });
    }
    let body: Buffer;
    try {
      body = await readAnswer(res.body, this.#maxBytes, signal);
    } catch (e) {
      if (e instanceof AnswerTooLargeError) throw new KeeperCallError('keeper_response_too_large', res.statusCode);
      throw new KeeperCallError('keeper_unreachable', res.statusCode, { cause: e });
    }
    return { status: res.statusCode, body };
  }
}
