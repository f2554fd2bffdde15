/**
 * The plumbing under `NexusClient` (client.ts): one `Transport` over the caller's dispatcher
 * and Nexus URLs, JSON calls that resolve with the parsed 200 answer (or throw the answer's
 * `err` as a `NexusApiError`), stream timeouts, and `close()`. The route methods live in the
 * subclass; nothing here knows a route.
 */
import { checkRetryUnavailableMs } from './args.js';
import { CLIENT_DEFAULTS, type ClientOptions } from './options.js';
import { parseAnswer } from './decode.js';
import { Transport } from './transport.js';
import { parseNexusUrls } from './urls.js';

export abstract class NexusClientCore {
  protected readonly transport: Transport;
  protected readonly o: Required<Pick<ClientOptions, 'streamHeadersTimeoutMs' | 'streamBodyTimeoutMs'>> & ClientOptions;
  private closing: Promise<void> | undefined;
  private readonly closeController = new AbortController();

  protected constructor(opts: ClientOptions) {
    const urls = parseNexusUrls(opts.urls, opts.allowHttp === true);
    checkRetryUnavailableMs(opts.retryUnavailableMs);
    this.o = {
      ...opts,
      streamHeadersTimeoutMs: opts.streamHeadersTimeoutMs ?? CLIENT_DEFAULTS.streamHeadersTimeoutMs,
      streamBodyTimeoutMs: opts.streamBodyTimeoutMs ?? CLIENT_DEFAULTS.streamBodyTimeoutMs,
    };
    this.transport = new Transport({
      urls,
      dispatcher: opts.dispatcher,
      timeoutMs: opts.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs,
      maxResponseBytes: opts.maxResponseBytes ?? CLIENT_DEFAULTS.maxResponseBytes,
      retryUnavailableMs: opts.retryUnavailableMs ?? CLIENT_DEFAULTS.retryUnavailableMs,
    });
  }

  /** Aborted when `close()` is called: caches and watchers built on this client clear then. */
  get closeSignal(): AbortSignal {
    return this.closeController.signal;
  }

  /** The caller's SPIFFE ID (from the X.509 source), when known. */
  get selfId(): string | undefined {
    return this.o.selfId?.();
  }

  /** The configured Nexus URLs, in fail-over order of configuration. */
  get urls(): string[] {
    return this.transport.urls.map((u) => u.origin + u.basePath);
  }

  // ----------------------------------------------------------------------------- plumbing

  /** POSTs a JSON body; resolves with the parsed 200 answer, or throws for a body `err`. */
  protected call(route: string, action: string | undefined, body: unknown, idempotent: boolean, signal?: AbortSignal): Promise<Record<string, unknown>> {
    return this.callBytes(route, action, Buffer.from(JSON.stringify(body), 'utf8'), idempotent, signal);
  }

  /**
   * {@link call} (empty body, not idempotent) for an operation Nexus answers only when it is
   * done (a sharing move pushes to every Keeper, with retries): the answer's headers may take
   * up to the whole request timeout, not just the response-header timeout.
   */
  protected callUntilDone(route: string, signal?: AbortSignal): Promise<Record<string, unknown>> {
    return this.callBytes(route, undefined, Buffer.from('{}', 'utf8'), false, signal, this.transport.timeoutMs);
  }

  /** {@link call} with a body already encoded; `bytes` is zeroed once sent. */
  protected async callBytes(route: string, action: string | undefined, bytes: Buffer, idempotent: boolean, signal?: AbortSignal, headersTimeoutMs?: number): Promise<Record<string, unknown>> {
    let raw: Buffer;
    try {
      raw = await this.transport.postBytes(route, action, bytes, { idempotent, signal, ...(headersTimeoutMs !== undefined ? { headersTimeoutMs } : {}) });
    } finally {
      bytes.fill(0);
    }
    return parseAnswer(raw);
  }

  protected streamTimeouts(): { headersTimeoutMs: number; bodyTimeoutMs: number } {
    return { headersTimeoutMs: this.o.streamHeadersTimeoutMs, bodyTimeoutMs: this.o.streamBodyTimeoutMs };
  }

  // ----------------------------------------------------------------------------- lifecycle

  /** Closes the dispatcher (and the X.509 source when the client opened it). Idempotent. */
  async close(): Promise<void> {
    this.closing ??= (async () => {
      this.transport.markClosed();
      this.closeController.abort();
      try {
        if (this.o.ownsDispatcher !== false) await this.o.dispatcher.close();
      } finally {
        await this.o.onClose?.();
      }
    })();
    return this.closing;
  }
}
