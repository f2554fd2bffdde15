/**
 * Connection admission for the mTLS servers: unverified sockets cannot starve verified ones.
 *
 * A TCP socket that has not finished its TLS handshake (and the SVID check after it) costs the
 * attacker nothing: it needs no certificate and may never send a byte. Counting such sockets
 * against the same limit as verified clients lets ~1,000 idle sockets lock everyone out. So
 * there are two budgets:
 *
 * - **Handshaking** sockets: at most `maxHandshakes` in all and `maxHandshakesPerSource` per
 *   remote address, each for at most the handshake timeout (enforced by the TLS server). When a
 *   budget is full, a new socket *evicts the oldest* handshaking socket of that budget instead
 *   of being refused. A real client finishes its handshake in milliseconds, so to push it out
 *   an attacker must open a full budget's worth of sockets within that time; idle or slow
 *   sockets are the ones that age and go first. The per-source budget means one address can
 *   only ever evict its own sockets.
 * - **Verified** connections: at most `maxConnections`. A verified socket over the limit is
 *   closed (verified clients are accountable: they hold an SVID).
 *
 * Every refusal and eviction is counted; the caller reports them through a rate-limited log.
 */
import type { Socket } from 'node:net';

export interface AdmissionLimits {
  /** Verified connections at once. */
  maxConnections: number;
  /** Sockets still in the TLS handshake (or SVID check) at once. */
  maxHandshakes: number;
  /** Handshaking sockets from one remote address at once. */
  maxHandshakesPerSource: number;
}

export type AdmissionEvent = 'handshake_evicted' | 'handshake_evicted_per_source' | 'connection_limit';

export class ConnectionAdmission {
  readonly limits: AdmissionLimits;
  /** Handshaking sockets, oldest first (Map keeps insertion order). */
  readonly #handshaking = new Map<Socket, string>();
  /** Per remote address: its handshaking sockets, oldest first. */
  readonly #bySource = new Map<string, Set<Socket>>();
  readonly #verified = new Set<Socket>();
  readonly #onEvent: (event: AdmissionEvent, source: string) => void;

  constructor(limits: AdmissionLimits, onEvent: (event: AdmissionEvent, source: string) => void) {
    for (const [k, v] of Object.entries(limits)) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`admission limit ${k} must be a positive integer`);
    }
    this.limits = Object.freeze({ ...limits });
    this.#onEvent = onEvent;
  }

  /** A new TCP socket was accepted. May destroy older handshaking sockets to make room. */
  accepted(raw: Socket): void {
    const source = raw.remoteAddress ?? 'unknown';
    let own = this.#bySource.get(source);
    if (own !== undefined && own.size >= this.limits.maxHandshakesPerSource) {
      const oldest = own.values().next().value as Socket;
      this.#evict(oldest, 'handshake_evicted_per_source', source);
    }
    if (this.#handshaking.size >= this.limits.maxHandshakes) {
      const [oldest, oldSource] = this.#handshaking.entries().next().value as [Socket, string];
      this.#evict(oldest, 'handshake_evicted', oldSource);
    }
    this.#handshaking.set(raw, source);
    own = this.#bySource.get(source);
    if (own === undefined) {
      own = new Set();
      this.#bySource.set(source, own);
    }
    own.add(raw);
    raw.once('close', () => {
      this.#forget(raw);
      this.#verified.delete(raw);
    });
  }

  /**
   * The socket's handshake and SVID check succeeded. Returns false (and the caller closes the
   * connection) when the verified budget is full.
   */
  verified(raw: Socket): boolean {
    this.#forget(raw);
    if (this.#verified.size >= this.limits.maxConnections) {
      this.#onEvent('connection_limit', raw.remoteAddress ?? 'unknown');
      return false;
    }
    this.#verified.add(raw);
    return true;
  }

  /** The socket stopped being a handshake candidate (failed or rejected). */
  done(raw: Socket): void {
    this.#forget(raw);
  }

  get handshaking(): number {
    return this.#handshaking.size;
  }

  get verifiedCount(): number {
    return this.#verified.size;
  }

  #evict(raw: Socket, event: AdmissionEvent, source: string): void {
    this.#forget(raw);
    raw.destroy();
    this.#onEvent(event, source);
  }

  #forget(raw: Socket): void {
    const source = this.#handshaking.get(raw);
    if (source === undefined) return;
    this.#handshaking.delete(raw);
    const own = this.#bySource.get(source);
    if (own !== undefined) {
      own.delete(raw);
      if (own.size === 0) this.#bySource.delete(source);
    }
  }
}
