/**
 * Handshake pacing for the mTLS servers (off by default: `SPIKE_HTTP_SERVER_HANDSHAKE_SLOTS`):
 * established connections keep being served while many clients handshake at once (FI-07,
 * FI-09).
 *
 * Node runs every TLS handshake on the server's one event loop. With hundreds of handshakes
 * under way together, their flights arrive together, and one turn of the loop can spend tens of
 * milliseconds in handshake crypto before it reads the next request of an established
 * connection. So at most `slots` sockets run their handshake at once; the others wait with
 * their TLS not yet started:
 *
 * - A socket joins the queue only once its first bytes have arrived (any bytes, or its end),
 *   so a socket that sends nothing never takes a slot. Node reads those bytes into the
 *   socket's buffer, and the TLS layer takes them from there when it starts.
 * - A slot is held from the start of TLS to the end of the handshake (the SVID check passed or
 *   failed, or the socket closed), and at most `leaseMs`: a peer that stalls mid-handshake
 *   loses its slot, and its handshake goes on unpaced under the timeout. Over long round trips
 *   most handshakes outlive the lease, and the gate then only staggers their starts.
 * - The queue serves source networks in turn (`sourceKey`, as the admission budgets count
 *   them): one socket of each network with sockets waiting, then the next round.
 * - The queue is bounded in time: a socket still waiting for a slot `waitMs` after accept (or
 *   half of `timeoutMs`, when shorter) starts without one, as does one whose first bytes only
 *   arrive after that, `OVERFLOW_PER_TURN` per turn of the loop; from its start the TLS
 *   server's own handshake timeout applies. A burst larger than the slots can serve in that
 *   time runs nearly as it would unpaced.
 * - A socket that has sent nothing `timeoutMs` after accept is closed (no TLS timer runs for
 *   it); no socket whose handshake has not ended outlives `timeoutMs` + 2 × the wait bound.
 *
 * The admission budgets count waiting sockets but evict them last (admission.ts `queued`,
 * `started`): while a socket waits it ages through no doing of its own, and a real client's
 * socket queued behind a flood of stalled connections would otherwise become its network's
 * oldest, where unpaced its handshake ends within milliseconds of accept. Waiting sockets are
 * capped (`maxQueued`, `maxQueuedPerSource`) so that what a flood turns over stays nearly the
 * whole budget. Why it is still off by default: in a simulation of the gate and the budgets
 * (36 flood shapes), pacing never did worse than unpaced except against attackers spread over
 * thousands of networks, where slightly more real clients were evicted (38 of 40 against 30 of
 * 40 in the worst shape, which already defeats the unpaced server).
 */
import type { Socket } from 'node:net';
import { sourceKey } from './admission.js';

/** Sockets past the wait bound started per turn of the event loop. */
const OVERFLOW_PER_TURN = 4;

export interface HandshakeGateOptions {
  /** Handshakes running at once; 0 starts every socket's TLS at accept (no pacing). */
  readonly slots: number;
  /** Longest a handshake holds its slot. */
  readonly leaseMs: number;
  /** The handshake timeout: a socket that sent nothing this long after accept is closed (0: the gate closes none). */
  readonly timeoutMs: number;
  /** The longest wait for a slot (less when half of `timeoutMs` is shorter). */
  readonly waitMs: number;
  /** Called for each socket the gate closes at its deadline (a silent one, or one whose TLS started late and never ended). */
  readonly onTimeout: () => void;
  /**
   * Most sockets waiting for a slot, in all and from one source network; past either, a
   * newcomer starts without a slot (as past the wait bound). Kept below what the admission
   * budgets hold, so waiting sockets, which they evict last, never fill a budget alone.
   */
  readonly maxQueued: number;
  readonly maxQueuedPerSource: number;
  /** A socket starts waiting for a slot / its TLS starts after it waited (admission.ts). */
  readonly onQueued?: (raw: Socket) => void;
  readonly onStarted?: (raw: Socket) => void;
}

interface Pending {
  timer: NodeJS.Timeout;
  /** Waiting for its first bytes, for a slot, for its turn past the wait bound, or its TLS started. */
  state: 'waiting' | 'queued' | 'overflow' | 'running';
  /** Set while it holds a slot. */
  lease: NodeJS.Timeout | undefined;
  /** Its wait bound has passed: it no longer waits for a slot. */
  late: boolean;
  /** Its source network, once queued; it counts against the caps until its TLS starts. */
  source?: string;
  counted: boolean;
}

export class HandshakeGate {
  readonly #start: (raw: Socket) => void;
  readonly #opts: HandshakeGateOptions;
  /** Sockets accepted whose handshake has not ended. */
  readonly #pending = new Map<Socket, Pending>();
  /** Sockets waiting for a slot, by source network; the map's order is the turn order. */
  readonly #queues = new Map<string, Socket[]>();
  #active = 0;
  #pumpScheduled = false;
  #closed = false;
  /** Sockets past the wait bound, started without a slot, `OVERFLOW_PER_TURN` per turn of the loop. */
  #overflowing: Socket[] = [];
  /** Sockets that waited for a slot and have not started (queued, or past the bound), in all and per source network. */
  #queuedCount = 0;
  readonly #queuedBySource = new Map<string, number>();

  /** `start` begins a socket's TLS (the TLS server's own connection handler). */
  constructor(start: (raw: Socket) => void, opts: HandshakeGateOptions) {
    this.#start = start;
    this.#opts = opts;
  }

  /** A socket was accepted (and admitted by the budgets). */
  admit(raw: Socket): void {
    if (raw.destroyed || this.#closed) {
      raw.destroy();
      return;
    }
    if (this.#opts.slots <= 0) {
      // No pacing: TLS starts at accept, and its own handshake timer bounds the socket.
      this.#begin(raw);
      return;
    }
    const t = this.#opts.timeoutMs;
    const wait = t > 0 ? Math.min(this.#opts.waitMs, Math.floor(t / 2)) : this.#opts.waitMs;
    const expire = (): void => {
      raw.destroy();
      this.#opts.onTimeout();
    };
    // At `timeoutMs` after accept: a silent socket is closed; one whose TLS started late (its
    // first byte came after the wait bound) gets `2 × wait` more, then is closed whatever
    // Node's handshake timer (started with its TLS) says. No unverified socket outlives
    // `timeoutMs + 2 × wait` after accept.
    const deadline = (): void => {
      if (p.state === 'waiting') expire();
      else p.timer = setTimeout(expire, 2 * wait).unref();
    };
    const p: Pending = { timer: setTimeout(() => {
      p.late = true;
      if (p.state === 'queued') this.#overflow(raw, p);
      if (t > 0) p.timer = setTimeout(deadline, Math.max(0, t - wait)).unref();
    }, wait).unref(), state: 'waiting', lease: undefined, late: false, counted: false };
    this.#pending.set(raw, p);
    raw.once('close', () => this.settled(raw));
    // Until TLS takes the socket over, errors (a reset) are the socket's own: without a
    // listener one would be thrown. The close that follows settles it.
    raw.on('error', () => raw.destroy());
    const onReadable = (): void => {
      raw.off('readable', onReadable);
      this.#enqueue(raw);
    };
    raw.on('readable', onReadable);
  }

  /** The socket's handshake ended (verified, refused, or the socket closed): frees its slot. */
  settled(raw: Socket): void {
    const p = this.#pending.get(raw);
    if (p === undefined) return;
    this.#pending.delete(raw);
    this.#unqueue(p, 'running');
    clearTimeout(p.timer);
    this.#release(p);
  }

  /** Closes every socket still waiting for its TLS to start; later sockets are closed at once. */
  close(): void {
    this.#closed = true;
    for (const queue of this.#queues.values()) {
      for (const raw of queue) if (this.#pending.get(raw)?.state === 'queued') raw.destroy();
    }
    this.#queues.clear();
  }

  /** Sockets accepted whose handshake has not ended (tests). */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Sockets that waited for a slot and whose TLS has not started. */
  get queued(): number {
    return this.#queuedCount;
  }

  #enqueue(raw: Socket): void {
    const p = this.#pending.get(raw);
    if (p === undefined || p.state !== 'waiting') return;
    if (this.#closed) {
      raw.destroy();
      return;
    }
    if (p.late) {
      this.#overflow(raw, p);
      return;
    }
    if (this.#active < this.#opts.slots && this.#queues.size === 0) {
      this.#run(raw, p, true); // a free slot and no one waiting: no wait
      return;
    }
    const key = sourceKey(raw.remoteAddress);
    const fromSource = this.#queuedBySource.get(key) ?? 0;
    if (this.#queuedCount >= this.#opts.maxQueued || fromSource >= this.#opts.maxQueuedPerSource) {
      this.#overflow(raw, p);
      return;
    }
    p.state = 'queued';
    p.source = key;
    p.counted = true;
    this.#queuedCount++;
    this.#queuedBySource.set(key, fromSource + 1);
    this.#opts.onQueued?.(raw);
    const queue = this.#queues.get(key);
    if (queue === undefined) this.#queues.set(key, [raw]);
    else queue.push(raw);
    this.#pump();
  }

  #release(p: Pending): void {
    if (p.lease === undefined) return;
    clearTimeout(p.lease);
    p.lease = undefined;
    this.#active--;
    if (this.#queues.size > 0 && !this.#pumpScheduled) {
      // Not from inside the TLS callback that ended the handshake: the next turn of the loop,
      // after the I/O it has ready (established connections' requests among it).
      this.#pumpScheduled = true;
      setImmediate(() => {
        this.#pumpScheduled = false;
        this.#pump();
      });
    }
  }

  #pump(): void {
    while (this.#active < this.#opts.slots) {
      const raw = this.#next();
      if (raw === undefined) return;
      const p = this.#pending.get(raw);
      if (p === undefined || p.state !== 'queued' || raw.destroyed) continue;
      this.#run(raw, p, true);
    }
  }

  /** The first waiting socket of the network whose turn it is; that network goes to the back. */
  #next(): Socket | undefined {
    for (const [key, queue] of this.#queues) {
      this.#queues.delete(key);
      const raw = queue.shift();
      if (queue.length > 0) this.#queues.set(key, queue);
      if (raw !== undefined) return raw;
    }
    return undefined;
  }

  /** Moves a socket to `next`; one that waited stops counting against the caps once it leaves for good. */
  #unqueue(p: Pending, next: Pending['state']): void {
    if (p.counted && p.source !== undefined && next !== 'overflow') {
      p.counted = false;
      this.#queuedCount--;
      const n = (this.#queuedBySource.get(p.source) ?? 1) - 1;
      if (n > 0) this.#queuedBySource.set(p.source, n);
      else this.#queuedBySource.delete(p.source);
    }
    p.state = next;
  }

  /**
   * Starts a socket past the wait bound without a slot. Not all at once: a burst's sockets reach
   * the bound together, each with its ClientHello buffered, and starting hundreds in one
   * callback would run all their first flights in one turn of the loop.
   */
  #overflow(raw: Socket, p: Pending): void {
    this.#unqueue(p, 'overflow');
    this.#overflowing.push(raw);
    if (this.#overflowing.length > 1) return;
    const drain = (): void => {
      const batch = this.#overflowing.splice(0, OVERFLOW_PER_TURN);
      for (const r of batch) {
        const q = this.#pending.get(r);
        if (q === undefined || q.state !== 'overflow' || r.destroyed) continue;
        if (this.#closed) r.destroy();
        else this.#run(r, q, false);
      }
      if (this.#overflowing.length > 0) setImmediate(drain);
    };
    setImmediate(drain);
  }

  /** Starts the socket's TLS, holding a slot for at most the lease when `slot`. */
  #run(raw: Socket, p: Pending, slot: boolean): void {
    const waited = p.counted;
    this.#unqueue(p, 'running');
    if (waited) this.#opts.onStarted?.(raw);
    if (slot) {
      this.#active++;
      p.lease = setTimeout(() => this.#release(p), this.#opts.leaseMs);
    }
    this.#begin(raw);
  }

  /** Starts the socket's TLS; a socket the TLS layer cannot take is closed. */
  #begin(raw: Socket): void {
    try {
      this.#start(raw);
    } catch {
      raw.destroy();
    }
  }
}
