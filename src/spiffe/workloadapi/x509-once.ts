/**
 * An X.509 source for short-lived processes (a CLI call): one `FetchX509SVID` answer, held
 * fixed, with no stream kept open and nothing to reconnect. It fails at once when no agent
 * listens at the address (`workload_api_no_agent`: no socket, a stale socket, connection
 * refused) and on a non-retryable status; an agent that answers but has no identity yet
 * (`Unavailable`, `PermissionDenied`, a stream ended early) is asked again with capped
 * backoff until `timeoutMs`. The SVID is checked exactly like the watching source's.
 */
import { Backoff } from '../../lib/index.js';
import { StaticX509Source } from '../source.js';
import { fetchX509Context } from './client.js';
import { WorkloadApiError, unavailableError } from './errors.js';
import { workloadEndpointFromEnv } from './endpoint.js';

export interface X509SourceOnceOptions {
  /** Default: `SPIFFE_ENDPOINT_SOCKET` or `unix:///tmp/spire-agent/public/api.sock`. */
  endpoint?: string;
  /** How long a live agent may take to hand out an SVID; default 10 s. */
  timeoutMs?: number;
  /** First retry delay; default 50 ms (capped at 1 s). */
  backoffInitialMs?: number;
  /** Synchronous work to do while the agent answers (first attempt only); its failure is ignored. */
  whileWaiting?: () => void;
}

/** Fetches the caller's X.509-SVID and bundles once; see the module comment. */
export async function fetchX509SourceOnce(opts: X509SourceOnceOptions = {}): Promise<StaticX509Source> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const started = Date.now();
  const deadline = started + timeoutMs;
  const endpoint = opts.endpoint ?? workloadEndpointFromEnv();
  const backoff = new Backoff({ initialMs: opts.backoffInitialMs ?? 50, maxMs: 1_000, jitter: 'equal' });
  let whileWaiting = opts.whileWaiting;
  for (;;) {
    const left = Math.max(1, deadline - Date.now());
    try {
      const ctx = await fetchX509Context({
        endpoint,
        timeoutMs: left,
        ...(whileWaiting !== undefined ? { whileWaiting } : {}),
      });
      return new StaticX509Source(ctx.svids[0]!, ctx.bundles);
    } catch (e) {
      whileWaiting = undefined;
      const retryable = e instanceof WorkloadApiError && e.code === 'workload_api_unavailable';
      const delay = backoff.next();
      if (!retryable) throw e;
      // The last attempt's own budget is not the wait: name the whole of it.
      if (Date.now() + delay >= deadline) throw unavailableError(endpoint, Date.now() - started, e.grpcCode, e);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
