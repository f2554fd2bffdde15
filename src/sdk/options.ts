/**
 * How a `NexusClient` is built: {@link ClientOptions} for `NexusClient.create` (bring your own
 * dispatcher), {@link ConnectOptions} for `NexusClient.connect` (the production wiring in
 * `connect.ts`), and the defaults both use.
 */
import type { Logger } from 'pino';
import type { Authorizer, X509Source } from '../spiffe/index.js';
import type { Env } from './roles.js';
import type { HttpDispatcher } from './transport.js';

/** Defaults in one place (SPIKE_HTTP_CLIENT_TIMEOUT is 60 s). */
export const CLIENT_DEFAULTS = {
  timeoutMs: 60_000,
  streamHeadersTimeoutMs: 60_000,
  streamBodyTimeoutMs: 60_000,
  maxResponseBytes: 64 * 1024 * 1024,
  retryUnavailableMs: 5_000,
} as const;

/** Options for `NexusClient.create`: bring your own dispatcher. */
export interface ClientOptions {
  /** Nexus base URLs; each entry may be a comma-separated list. */
  urls: string[];
  /** An undici `Dispatcher`, or anything with the same `request`/`close` (see `HttpDispatcher`). */
  dispatcher: HttpDispatcher;
  /** Deadline of one JSON call (all fail-over attempts included). */
  timeoutMs?: number;
  /** See {@link ConnectOptions.retryUnavailableMs} (default 5 s). */
  retryUnavailableMs?: number;
  streamHeadersTimeoutMs?: number;
  streamBodyTimeoutMs?: number;
  maxResponseBytes?: number;
  /** Accept `http:` URLs (tests with a plain dispatcher only). */
  allowHttp?: boolean;
  /** The caller's own SPIFFE ID, if known (exposed as `selfId`). */
  selfId?: () => string | undefined;
  /** Run by `close()` after the dispatcher is closed (e.g. closing the X.509 source). */
  onClose?: () => Promise<void> | void;
  /** Close the dispatcher in `close()` (default true). */
  ownsDispatcher?: boolean;
}

/** Options for `NexusClient.connect`; every setting not given comes from the environment. */
export interface ConnectOptions {
  /** Nexus URLs; default from `SPIKE_NEXUS_API_URL` (comma-separated allowed). */
  urls?: string[];
  /** Your own X.509 source; otherwise one is opened on the Workload API and closed by `close()`. */
  source?: X509Source;
  /** Environment to read settings from (default `process.env`). */
  env?: Env;
  /** Deadline of one JSON call in ms (default `SPIKE_HTTP_CLIENT_TIMEOUT`, 60 s). */
  timeoutMs?: number;
  /**
   * How long a JSON call goes on trying while Nexus is unavailable: every URL refused the
   * connection or had no address (a restart, a pod not yet in DNS), or answered 502/503/504
   * for a read or `not_applied` for a write. Nothing was applied, so writes are retried too.
   * Default `SPIKE_HTTP_CLIENT_UNAVAILABLE_RETRY`, 5 s; always within `timeoutMs`; 0 fails at
   * once (a CLI call, where a quick answer matters more).
   */
  retryUnavailableMs?: number;
  /** Workload API address (default `SPIFFE_ENDPOINT_SOCKET`). */
  endpoint?: string;
  /** Wait for the first SVID in ms (default `SPIKE_SPIFFE_SOURCE_TIMEOUT`, 30 s). */
  sourceTimeoutMs?: number;
  /** Aborting it ends `connect()`'s wait for the first SVID, rejecting with its reason. */
  signal?: AbortSignal;
  /** Server check (default: `isNexus` over `SPIKE_TRUST_ROOT_NEXUS`). */
  authorizeServer?: Authorizer;
  /** Logger for the Workload API source (default: JSON lines on stderr). */
  logger?: Logger;
  /**
   * How the SVID is obtained. `watch` (default): a Workload API stream kept open for
   * rotation, for long-lived processes. `once`: one fetch, no stream kept open, and no wait
   * when no agent listens (`workload_api_no_agent` at once), for short-lived processes such as
   * a CLI call.
   */
  svid?: 'watch' | 'once';
}
