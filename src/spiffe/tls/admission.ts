/**
 * Connection admission for the mTLS servers: unverified sockets cannot starve verified ones,
 * and no one source (or one client identity) can take all the room.
 *
 * A TCP socket that has not finished its TLS handshake (and the SVID check after it) costs the
 * attacker nothing: it needs no certificate and may never send a byte. Counting such sockets
 * against the same limit as verified clients lets ~1,000 idle sockets lock everyone out. So
 * there are two budgets:
 *
 * - **Handshaking** sockets: at most `maxHandshakes` in all, at most half of that per source
 *   network (an IPv4 /24, an IPv6 /64; each loopback address on its own), and
 *   `maxHandshakesPerSource` per source network as far as newcomers from it find sockets a
 *   second old to push out (nothing sweeps them: a socket goes when a newer one from its
 *   network arrives, or at the handshake timeout, enforced by the TLS server). A full budget is
 *   never a reason to refuse a new socket; instead something older goes:
 *     - a source at its own limit loses its own oldest handshaking socket, so one network can
 *       only ever push out its own sockets; but only a socket at least `minEvictAgeMs` old
 *       (default 1 s) goes: a client opening many connections at once (a connection pool
 *       filling up, 50 or 300 concurrent requests from one host, ENV-06) has them all accepted
 *       within a few ticks, before any could finish its handshake, and evicting them reset a
 *       legitimate burst. On a saturated server (or over long round trips) handshakes
 *       themselves take longer, so the age a socket is spared for is four times the recent
 *       time of *verified* handshakes when that is longer: a moving average of accept → verified
 *       in which each handshake counts for at most 2 s (one stalled handshake cannot move it
 *       far), halving every 10 s without new ones, and the age is at most 4 s (and at most 80%
 *       of the handshake timeout). Only clients with a valid, authorized SVID move that time,
 *       and it changes nothing about the half-budget cap below or the total-budget rule.
 *       Younger sockets are admitted over the per-source limit up to half
 *       the total budget: past that its oldest goes whatever its age, so one network never
 *       holds more than half of the budget (nor of the file descriptors and memory behind it),
 *       whatever the per-source limit is set to;
 *     - when the total is full, the oldest socket *of the source holding the most* goes, so an
 *       attacker spread over several networks mostly evicts itself, one network that filled
 *       the whole budget loses its own oldest to every newcomer from elsewhere, and a client
 *       with one handshake in flight goes only if every source is down to one.
 *   A real client finishes its handshake in milliseconds, so idle or slow sockets are the ones
 *   that age and go first.
 * - **Verified** connections: at most `maxConnections`. When full, a newcomer closes the
 *   verified connection that has been idle (no request in flight) the longest; only when every
 *   connection is busy is the newcomer refused. Holding slots therefore needs real, constant
 *   traffic, not a request every keep-alive period.
 *
 * Every refusal and eviction is reported through `onEvent` (the caller rate-limits its log).
 */
import net, { type Socket } from 'node:net';
import { OldestFirst } from './oldest-first.js';

interface AdmissionLimits {
  /** Verified connections at once. */
  maxConnections: number;
  /** Sockets still in the TLS handshake (or SVID check) at once. */
  maxHandshakes: number;
  /** Handshaking sockets from one source network at once. */
  maxHandshakesPerSource: number;
}

export type AdmissionEvent = 'handshake_evicted' | 'handshake_evicted_per_source' | 'connection_evicted_idle' | 'connection_limit';

/** Log message of each event (fixed text: nothing from the socket). */
export const ADMISSION_EVENT_MESSAGES: Readonly<Record<AdmissionEvent, string>> = Object.freeze({
  handshake_evicted: 'handshake budget full; the oldest handshake of the busiest source was closed',
  handshake_evicted_per_source: 'a source reached its handshake budget; its oldest handshake was closed',
  connection_evicted_idle: 'verified connection limit reached; the longest-idle connection was closed',
  connection_limit: 'verified connection limit reached and every connection busy; new connection closed',
});

/**
 * The source network of an address: IPv4 /24, IPv6 /64 (IPv4-mapped IPv6 as IPv4); loopback
 * addresses stand alone (local processes can use any of them, so grouping adds nothing).
 */
export function sourceKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  let a = address;
  if (a.startsWith('::ffff:') && net.isIPv4(a.slice(7))) a = a.slice(7);
  if (net.isIPv4(a)) {
    if (a.startsWith('127.')) return a;
    return `${a.slice(0, a.lastIndexOf('.'))}.0/24`;
  }
  if (net.isIPv6(a)) {
    if (a === '::1') return a;
    // Expand to 8 groups and keep the first 4 (the /64).
    const [head = '', tail = ''] = a.split('::') as [string?, string?];
    const h = head === '' ? [] : head.split(':');
    const t = tail === '' ? [] : tail.split(':');
    const groups = a.includes('::') ? [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
    return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
  }
  return 'unknown';
}

interface VerifiedState {
  /** Requests in flight. */
  busy: number;
  /** When the last request ended (or the connection was verified), ms. */
  lastActive: number;
}

/** Per-source eviction spares handshaking sockets younger than this (see the module doc). */
const MIN_EVICT_AGE_MS = 1_000;
/** ...or younger than this many times the recent verified-handshake time, when longer... */
const SPARE_HANDSHAKE_FACTOR = 4;
/** ...but that longer age is at most this (and at most 80% of the handshake timeout)... */
const MAX_SPARE_MS = 4_000;
/** Weight of the newest verified handshake in the recent handshake time (a moving average). */
const HANDSHAKE_TIME_WEIGHT = 0.2;
/** Most one handshake counts for in that average, ms. */
const HANDSHAKE_SAMPLE_CAP_MS = 2_000;
/** The average halves every this many ms without a verified handshake. */
const HANDSHAKE_TIME_HALF_LIFE_MS = 10_000;

interface AdmissionOptions {
  /** Youngest handshaking socket a per-source eviction may close (default 1 s; 0 = any). */
  minEvictAgeMs?: number;
  /** The server's handshake timeout: the spare age stays below 80% of it (default: none). */
  handshakeTimeoutMs?: number;
  /** Monotonic clock in ms, for tests (default `performance.now`). */
  now?: () => number;
}

export class ConnectionAdmission {
  readonly limits: AdmissionLimits;
  /** Handshaking sockets → source key, oldest first (Map keeps insertion order). */
  readonly #handshaking = new Map<Socket, string>();
  /** Each handshaking socket's acceptance: when (ms), and its place in the order (ties in {@link #largestSource}). */
  readonly #accepted = new WeakMap<Socket, { at: number; n: number }>();
  #accepts = 0;
  readonly #minEvictAgeMs: number;
  /** Moving average of accept → verified, ms (verified handshakes only), as of {@link #handshakeAt}. */
  #handshakeMs = 0;
  #handshakeAt = 0;
  readonly #maxSpareMs: number;
  /** Most handshaking sockets one source may hold while its oldest is still young (see the module doc). */
  readonly #burstCap: number;
  readonly #now: () => number;
  /** Per source: its handshaking sockets that may be evicted, oldest first (accept or TLS start). */
  readonly #bySource = new Map<string, OldestFirst<Socket>>();
  /**
   * Per source: sockets waiting for a handshake slot (handshake-gate.ts), oldest first. Counted
   * in the budgets but evicted only when their budget holds nothing else: while they wait they
   * age through no doing of their own, and a real client's socket among them would otherwise
   * become its network's oldest behind a flood that, unpaced, it would have outrun.
   */
  readonly #waiting = new Map<string, OldestFirst<Socket>>();
  /** Sockets whose TLS started after they waited: they never wait again. */
  readonly #startedAfterWait = new WeakSet<Socket>();
  readonly #verified = new Map<Socket, VerifiedState>();
  readonly #onEvent: (event: AdmissionEvent, source: string) => void;

  constructor(limits: AdmissionLimits, onEvent: (event: AdmissionEvent, source: string) => void, opts: AdmissionOptions = {}) {
    this.#minEvictAgeMs = opts.minEvictAgeMs ?? MIN_EVICT_AGE_MS;
    this.#maxSpareMs = Math.min(MAX_SPARE_MS, 0.8 * (opts.handshakeTimeoutMs ?? Infinity));
    this.#now = opts.now ?? (() => performance.now());
    for (const [k, v] of Object.entries(limits)) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`admission limit ${k} must be a positive integer`);
    }
    this.limits = Object.freeze({ ...limits });
    this.#burstCap = Math.max(1, Math.floor(limits.maxHandshakes / 2));
    this.#onEvent = onEvent;
  }

  /** A new TCP socket was accepted. May destroy older handshaking sockets to make room. */
  accepted(raw: Socket): void {
    const source = sourceKey(raw.remoteAddress);
    const own = this.#bySource.get(source);
    const held = this.#waiting.get(source);
    const count = (own?.size ?? 0) + (held?.size ?? 0);
    const now = this.#now();
    if (count >= Math.min(this.limits.maxHandshakesPerSource, this.#burstCap)) {
      const oldest = (own?.oldest() ?? held?.oldest()) as Socket;
      const old = now - (this.#accepted.get(oldest)?.at ?? 0) >= this.spareMs;
      if (old || count >= this.#burstCap) this.#evict(oldest, 'handshake_evicted_per_source', source);
    }
    if (this.#handshaking.size >= this.limits.maxHandshakes) {
      const [victimSource, victim] = this.#largestSource();
      this.#evict(victim, 'handshake_evicted', victimSource);
    }
    this.#handshaking.set(raw, source);
    this.#accepted.set(raw, { at: now, n: this.#accepts++ });
    addTo(this.#bySource, source, raw);
    raw.once('close', () => {
      this.#forget(raw);
      this.#verified.delete(raw);
    });
  }

  /**
   * The socket's handshake and SVID check succeeded. When the verified budget is full, the
   * longest-idle verified connection is closed to make room; returns false (the caller
   * closes the newcomer) only when every verified connection is busy.
   */
  verified(raw: Socket): boolean {
    const at = this.#handshaking.has(raw) ? this.#accepted.get(raw)?.at : undefined;
    if (at !== undefined) this.#recordHandshake(at);
    this.#forget(raw);
    if (this.#verified.size >= this.limits.maxConnections) {
      const victim = this.#longestIdle();
      if (victim === undefined) {
        this.#onEvent('connection_limit', sourceKey(raw.remoteAddress));
        return false;
      }
      this.#verified.delete(victim);
      victim.destroy();
      this.#onEvent('connection_evicted_idle', sourceKey(victim.remoteAddress));
    }
    this.#verified.set(raw, { busy: 0, lastActive: Date.now() });
    return true;
  }

  /** A request started on a verified connection. */
  requestStarted(raw: Socket): void {
    const v = this.#verified.get(raw);
    if (v !== undefined) v.busy++;
  }

  /** A request ended on a verified connection. */
  requestEnded(raw: Socket): void {
    const v = this.#verified.get(raw);
    if (v === undefined) return;
    v.busy = Math.max(0, v.busy - 1);
    v.lastActive = Date.now();
  }

  /** The socket stopped being a handshake candidate (failed or rejected). */
  done(raw: Socket): void {
    this.#forget(raw);
  }

  /** The socket waits for a handshake slot (handshake-gate.ts): evicted only when nothing else can be. */
  queued(raw: Socket): void {
    const source = this.#handshaking.get(raw);
    if (source === undefined || this.#startedAfterWait.has(raw)) return;
    removeFrom(this.#bySource, source, raw);
    addTo(this.#waiting, source, raw);
  }

  /**
   * The socket's TLS started after it waited for a slot: from now on it ages, and is evicted, as
   * a handshake started now; its handshake time counts from now.
   */
  started(raw: Socket): void {
    const source = this.#handshaking.get(raw);
    const held = source === undefined ? undefined : this.#waiting.get(source);
    if (source === undefined || held === undefined || !held.has(raw)) return;
    removeFrom(this.#waiting, source, raw);
    // A started socket counts as accepted now, for its age and its place among ties.
    this.#accepted.set(raw, { at: this.#now(), n: this.#accepts++ });
    this.#startedAfterWait.add(raw);
    addTo(this.#bySource, source, raw);
  }

  /** How young a handshaking socket must be to be spared a per-source eviction, ms (module doc). */
  get spareMs(): number {
    return Math.max(this.#minEvictAgeMs, Math.min(this.#maxSpareMs, SPARE_HANDSHAKE_FACTOR * this.#recentHandshakeMs(this.#now())));
  }

  /** The moving average as of `now`: halved for every half-life since its last sample. */
  #recentHandshakeMs(now: number): number {
    return this.#handshakeMs * 0.5 ** (Math.max(0, now - this.#handshakeAt) / HANDSHAKE_TIME_HALF_LIFE_MS);
  }

  /** Adds the handshake of a socket accepted at `acceptedAt` (one clock read for both ends). */
  #recordHandshake(acceptedAt: number): void {
    const now = this.#now();
    const ms = now - acceptedAt;
    if (!Number.isFinite(ms)) return;
    const recent = this.#recentHandshakeMs(now);
    this.#handshakeMs = recent + HANDSHAKE_TIME_WEIGHT * (Math.min(HANDSHAKE_SAMPLE_CAP_MS, Math.max(0, ms)) - recent);
    this.#handshakeAt = now;
  }

  get handshaking(): number {
    return this.#handshaking.size;
  }

  get verifiedCount(): number {
    return this.#verified.size;
  }

  /**
   * The source with the most handshaking sockets that may be evicted, and its oldest; ties go to
   * the one whose oldest was accepted first. Only when every handshaking socket waits for a slot,
   * the source with the most of those, and its oldest. One pass over the sources, not over the
   * sockets: a flood keeping the budget full from a few networks costs each accept a few steps.
   */
  #largestSource(): [string, Socket] {
    const pick = (sets: Map<string, OldestFirst<Socket>>): [string, Socket] | undefined => {
      let best: [string, OldestFirst<Socket>] | undefined;
      let bestFirst = Infinity;
      for (const entry of sets) {
        const size = entry[1].size;
        const first = this.#accepted.get(entry[1].oldest() as Socket)?.n ?? Infinity;
        if (best === undefined || size > best[1].size || (size === best[1].size && first < bestFirst)) {
          best = entry;
          bestFirst = first;
        }
      }
      return best === undefined ? undefined : [best[0], best[1].oldest() as Socket];
    };
    return (pick(this.#bySource) ?? pick(this.#waiting)) as [string, Socket];
  }

  #longestIdle(): Socket | undefined {
    let victim: Socket | undefined;
    let oldest = Infinity;
    for (const [s, v] of this.#verified) {
      if (v.busy === 0 && v.lastActive < oldest) {
        oldest = v.lastActive;
        victim = s;
      }
    }
    return victim;
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
    if (!removeFrom(this.#bySource, source, raw)) removeFrom(this.#waiting, source, raw);
  }
}

/** Adds `raw` to `source`'s set in `sets`, making the set when it is the source's first. */
function addTo(sets: Map<string, OldestFirst<Socket>>, source: string, raw: Socket): void {
  let own = sets.get(source);
  if (own === undefined) {
    own = new OldestFirst();
    sets.set(source, own);
  }
  own.add(raw);
}

/** Removes `raw` from `source`'s set in `sets`, dropping the set once empty; true if it was there. */
function removeFrom(sets: Map<string, OldestFirst<Socket>>, source: string, raw: Socket): boolean {
  const own = sets.get(source);
  if (own === undefined || !own.delete(raw)) return false;
  if (own.size === 0) sets.delete(source);
  return true;
}
