/**
 * The production wiring of `NexusClient.connect`: X.509 source from the SPIFFE Workload API
 * (a watching stream, or one fetch with `svid: 'once'`), one keep-alive mTLS client on
 * `node:https` (`createMtlsHttpsClient` in `src/spiffe/tls/`) that accepts only a server whose
 * SPIFFE ID passes `isNexus`, and the client settings from the environment:
 *
 * | Variable | Default | Used for |
 * |---|---|---|
 * | `SPIKE_NEXUS_API_URL` | `https://localhost:8553` | Nexus URLs (comma-separated for several instances) |
 * | `SPIFFE_ENDPOINT_SOCKET` | `unix:///tmp/spire-agent/public/api.sock` | Workload API |
 * | `SPIKE_SPIFFE_SOURCE_TIMEOUT` | `30s` | wait for the first SVID |
 * | `SPIKE_TRUST_ROOT_NEXUS` | `spike.ist` | server check |
 * | `SPIKE_HTTP_CLIENT_TIMEOUT` | `60s` | one JSON call, fail-over included |
 * | `SPIKE_HTTP_CLIENT_UNAVAILABLE_RETRY` | `5s` | retries while Nexus is unavailable (`retryUnavailableMs`) |
 * | `SPIKE_HTTP_CLIENT_TLS_HANDSHAKE_TIMEOUT` | `10s` | connect + handshake + SVID check |
 * | `SPIKE_HTTP_CLIENT_RESPONSE_HEADER_TIMEOUT` | `10s` | response headers |
 * | `SPIKE_HTTP_CLIENT_MAX_CONNS_PER_HOST` | `10` | pool size per Nexus |
 *
 * A malformed value is a `ConfigError` naming the variable (never its value).
 *
 * With no Workload API configured (no `endpoint`, no `SPIFFE_ENDPOINT_SOCKET`) and no socket
 * at the standard default path, `connect` fails at once with `WorkloadApiError`
 * `workload_api_no_agent` instead of waiting `SPIKE_SPIFFE_SOURCE_TIMEOUT` for an agent that
 * nobody said would come. An explicitly configured socket is waited for (an agent starting
 * beside the app), except with `svid: 'once'`, which never waits for a missing agent.
 * With `svid: 'once'` (a CLI call) Node's TLS root store, which the first mTLS context would
 * otherwise build, is built while the Workload API answers (`warmTrustStore`; trust unchanged),
 * and the first Nexus host name is looked up meanwhile (`prefetchDial`).
 */
import fs from 'node:fs';
import { duration, int, optionalStr, createLogger, parseLevel } from '../lib/index.js';
import {
  assertDefaultTrusted, authorizeIf, type Authorizer, createMtlsHttpsClient, DEFAULT_WORKLOAD_API_ENDPOINT, fetchX509SourceOnce, parseWorkloadEndpoint,
  prefetchDial, warmTrustStore, WorkloadApiError, WorkloadX509Source, type X509Source,
} from '../spiffe/index.js';
import { checkRetryUnavailableMs } from './args.js';
import { CLIENT_DEFAULTS, type ClientOptions, type ConnectOptions } from './options.js';
import { recognisersFromEnv, type Env } from './roles.js';
import { nexusUrlsFromEnv, parseNexusUrls } from './urls.js';

export type { ConnectOptions };

/** `isNexus` over `SPIKE_TRUST_ROOT_NEXUS` as an authorizer for the TLS client. */
export function nexusAuthorizer(env: Env): Authorizer {
  const ids = recognisersFromEnv(env);
  return authorizeIf((id) => ids.isNexus(id));
}

/** Builds `ClientOptions` for `NexusClient` from `ConnectOptions` (opens the source if needed). */
export async function connectOptions(opts: ConnectOptions): Promise<ClientOptions> {
  const env: Env = opts.env ?? process.env;
  const urls = opts.urls ?? nexusUrlsFromEnv(env);
  const firstOrigin = parseNexusUrls(urls)[0]!.origin; // fail on a bad URL list before opening anything
  checkRetryUnavailableMs(opts.retryUnavailableMs); // and on a bad option
  const retryUnavailableMs = opts.retryUnavailableMs ?? duration(env, 'SPIKE_HTTP_CLIENT_UNAVAILABLE_RETRY', CLIENT_DEFAULTS.retryUnavailableMs, 0);
  const timeoutMs = opts.timeoutMs ?? duration(env, 'SPIKE_HTTP_CLIENT_TIMEOUT', 60_000, 1);
  const connectTimeoutMs = duration(env, 'SPIKE_HTTP_CLIENT_TLS_HANDSHAKE_TIMEOUT', 10_000, 1);
  const headersTimeoutMs = duration(env, 'SPIKE_HTTP_CLIENT_RESPONSE_HEADER_TIMEOUT', 10_000, 1);
  const connections = int(env, 'SPIKE_HTTP_CLIENT_MAX_CONNS_PER_HOST', 10, 1, 1024);
  const authorizeServer = opts.authorizeServer ?? nexusAuthorizer(env);

  let source = opts.source;
  let ownsSource = false;
  opts.signal?.throwIfAborted();
  if (!source) {
    source = await openSource(opts, env, firstOrigin);
    ownsSource = true;
  }
  const src = source;
  const dispatcher = createMtlsHttpsClient({
    source: src,
    authorizeServer,
    connections,
    connectTimeoutMs,
    headersTimeoutMs,
    bodyTimeoutMs: timeoutMs,
  });
  return {
    urls,
    dispatcher,
    timeoutMs,
    retryUnavailableMs,
    streamHeadersTimeoutMs: timeoutMs,
    streamBodyTimeoutMs: timeoutMs,
    selfId: () => {
      try {
        return src.getX509Svid().id.toString();
      } catch {
        return undefined;
      }
    },
    onClose: () => {
      if (ownsSource) src.close();
    },
  };
}

/** The Workload API source `connect` opens when none is given (see the module comment). */
async function openSource(opts: ConnectOptions, env: Env, firstOrigin: string): Promise<X509Source> {
  const configured = opts.endpoint ?? optionalStr(env, 'SPIFFE_ENDPOINT_SOCKET');
  const endpoint = configured ?? DEFAULT_WORKLOAD_API_ENDPOINT;
  const sourceTimeoutMs = opts.sourceTimeoutMs ?? duration(env, 'SPIKE_SPIFFE_SOURCE_TIMEOUT', 30_000, 1);
  if (configured === undefined || opts.svid === 'once') {
    const ep = parseWorkloadEndpoint(endpoint);
    if (ep.target.startsWith('unix://') && !fs.existsSync(ep.target.slice('unix://'.length))) {
      const hint = configured === undefined ? ' (SPIFFE_ENDPOINT_SOCKET is not set; this is the default socket)' : '';
      throw new WorkloadApiError('workload_api_no_agent', `no Workload API at ${endpoint}: is the agent running?${hint}`);
    }
  }
  if (configured === undefined) assertDefaultTrusted();
  if (opts.svid === 'once') {
    // A short-lived caller: the first Nexus host name is looked up while the SVID is fetched.
    prefetchDial(new URL(firstOrigin).hostname);
    const once = await fetchX509SourceOnce({ endpoint, timeoutMs: sourceTimeoutMs, whileWaiting: warmTrustStore });
    if (opts.signal?.aborted === true) {
      once.close();
      throw opts.signal.reason;
    }
    return once;
  }
  return WorkloadX509Source.open({
    endpoint,
    timeoutMs: sourceTimeoutMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
    // The unconfigured default is judged again before every reconnect.
    ...(configured === undefined ? { beforeDial: () => assertDefaultTrusted() } : {}),
    logger: opts.logger ?? createLogger({ component: 'sdk', level: parseLevel(env['SPIKE_SYSTEM_LOG_LEVEL']), destination: process.stderr }),
  });
}
