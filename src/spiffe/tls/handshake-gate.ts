/**
 * Handshake pacing for the mTLS servers: established connections keep being served while many
 * clients handshake at once (FI-07, FI-09).
 *
 * Node runs every TLS handshake on the server's one event loop. With hundreds of handshakes
 * under way together, their flights arrive together, and one turn of the loop can spend tens of
 * milliseconds in handshake crypto before it reads the next request of an established
 * connection. So at most `slots` sockets run their handshake at once; the others wait with
 * their TLS not yet started:
 *
 * - A socket joins the queue only once its first bytes (the ClientHello) have arrived, so a
 *   socket that sends nothing never takes a slot. Node reads those bytes into the socket's
 *   buffer, and the TLS layer takes them from there when it starts.
 * - A slot is held from the start of TLS to the end of the handshake (the SVID check passed or
 *   failed, or the socket closed), and at most `leaseMs`: a peer that stalls mid-handshake
 *   loses its slot, and its handshake goes on unpaced under the timeout. A slot therefore never
 *   waits on a peer for longer than the lease, and a socket waits in the queue at most about
 *   (sockets ahead of it) × `leaseMs` / `slots`. Over long round trips most handshakes outlive
 *   the lease, and the gate then only staggers their starts.
 * - The queue serves source networks in turn (`sourceKey`, as the admission budgets count
 *   them): one socket of each network with sockets waiting, then the next round, so one
 *   network's burst delays another network's client by at most one socket per waiting network.
 * - The queue is bounded in time: a socket still waiting for a slot half of `timeoutMs` after
 *   accept starts without one (as does one whose ClientHello only arrives after that), and
 *   from its start the TLS server's own handshake timeout (`timeoutMs`) applies, as it did when
 *   the kernel's accept queue was the only queue. A burst larger than the slots can serve in
 *   that time is therefore run as it was before pacing, not refused.
 * - A socket that has sent nothing `timeoutMs` after accept is closed (no TLS timer runs for
 *   it).
 */
import type { Socket } from 'node:net';
import { sourceKey } from './admission.js';

export interface HandshakeGateOptions {
  /** Handshakes running at once; 0 starts every socket's TLS at accept (no pacing). */
  readonly slots: number;
  /** Longest a handshake holds its slot. */
  readonly leaseMs: number;
  /** The handshake timeout: a socket that sent nothing this long after accept is closed; one waiting for a slot starts at half of it. */
  readonly timeoutMs: number;
  /** Called for each silent socket closed by the timeout. */
  readonly onTimeout: () => void;
}

interface Pending {
  timer: NodeJS.Timeout;
  /** Waiting for its first bytes, waiting for a slot, or its TLS started. */
  state: 'waiting' | 'queued' | 'running';
  /** Set while it holds a slot. */
  lease: NodeJS.Timeout | undefined;
  /** Half the timeout has passed: it no longer waits for a slot. */
  late: boolean;
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
    const half = Math.floor(this.#opts.timeoutMs / 2);
    const silent = (): void => {
      if (p.state !== 'waiting') return;
      this.#opts.onTimeout();
      raw.destroy();
    };
    const p: Pending = { timer: setTimeout(() => {
      p.late = true;
      if (p.state === 'queued') this.#run(raw, p, false);
      else if (p.state === 'waiting') p.timer = setTimeout(silent, this.#opts.timeoutMs - half).unref();
    }, half).unref(), state: 'waiting', lease: undefined, late: false };
    this.#pending.set(raw, p);
    raw.once('close', () => this.settled(raw));
    if (this.#opts.slots <= 0) {
      this.#run(raw, p, false);
      return;
    }
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

  /** Sockets waiting for a slot. */
  get queued(): number {
    let n = 0;
    for (const p of this.#pending.values()) if (p.state === 'queued') n++;
    return n;
  }

  #enqueue(raw: Socket): void {
    const p = this.#pending.get(raw);
    if (p === undefined || p.state !== 'waiting') return;
    if (p.late) {
      this.#run(raw, p, false);
      return;
    }
    p.state = 'queued';
    const key = sourceKey(raw.remoteAddress);
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

  /** Starts the socket's TLS, holding a slot for at most the lease when `slot`. */
  #run(raw: Socket, p: Pending, slot: boolean): void {
    p.state = 'running';
    if (slot) {
      this.#active++;
      p.lease = setTimeout(() => this.#release(p), this.#opts.leaseMs);
    }
    try {
      this.#start(raw);
    } catch {
      raw.destroy();
    }
  }
}
