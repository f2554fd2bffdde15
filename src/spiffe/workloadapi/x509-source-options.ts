/** The options of the watching source (x509-source.ts) and their defaults. */
import type { Logger } from '../../lib/index.js';

export interface WorkloadX509SourceOptions {
  /** Default: `SPIFFE_ENDPOINT_SOCKET` or `unix:///tmp/spire-agent/public/api.sock`. */
  endpoint?: string;
  /** How long `open` waits for the first SVID; undefined = forever (as SPIKE's servers do). */
  timeoutMs?: number;
  /** Aborting it ends `open`'s wait for the first SVID (rejecting with its reason); not the source's later life. */
  signal?: AbortSignal;
  logger?: Logger;
  /** Reconnect backoff bounds; defaults 100 ms and 5 s. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A stream with no message this long after connecting is ended and retried (default 30 s). */
  stallTimeoutMs?: number;
  /**
   * Run before every dial, reconnects included: false = nothing there yet (retried later,
   * without dialling); a throw refuses the endpoint for good (e.g. `assertDefaultTrusted`).
   */
  beforeDial?: () => boolean;
}

/** Reconnect backoff bounds and the silence timeout of a fresh stream, unless the options say otherwise. */
export const SOURCE_DEFAULTS = { backoffInitialMs: 100, backoffMaxMs: 5_000, stallTimeoutMs: 30_000 } as const;
