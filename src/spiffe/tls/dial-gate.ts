/**
 * At most `MTLS_DEFAULTS.clientHandshakesPerTarget` TLS handshakes in flight from this process
 * to one server address; further dials wait their turn in order.
 *
 * Why: a server keeps a budget of handshakes per remote address (admission.ts, 32 by default)
 * and closes the oldest one past it, so that unauthenticated clients cannot tie up its
 * handshake slots. A legitimate client that opens a large pool at once (64 connections from
 * one process) would otherwise trip that budget by itself and see half its first requests fail
 * with "connection closed by the server". Handshakes are CPU-bound on both sides, so a few at
 * a time open the pool as fast as many would.
 *
 * A waiting dial that is cancelled (its connect timeout fired) leaves the queue; a gate whose
 * queue is empty and nothing in flight is forgotten. The gate remembers when a handshake to its
 * target last succeeded (`lastSuccessAt`): while handshakes keep succeeding, a long queue is
 * progress, not a dead server (dial.ts bounds a waiting dial by that, not by its place in line).
 */
import { MTLS_DEFAULTS } from './context.js';

interface Gate {
  active: number;
  waiting: Array<() => void>;
  /** performance.now() of the last handshake to this target that succeeded, else -Infinity. */
  lastSuccessAt: number;
}

const gates = new Map<string, Gate>();

/** A place in a target's handshake queue: `cancel` before the start, `done` after it. */
export interface DialTurn {
  /** Leaves the queue if the dial has not started yet (no effect after). */
  cancel(): void;
  /** Frees the slot once the handshake ended either way (idempotent); `ok` when it succeeded. */
  done(ok?: boolean): void;
  /** When a handshake to this target last succeeded (performance.now()), else -Infinity. */
  lastSuccessAt(): number;
}

/**
 * Calls `start` when the target `key` (`host|port`) has a free handshake slot: at once when it
 * has one, else when an earlier dial to it ends (inside that dial's `done`). `start` must not
 * throw: it owns the slot until it calls `done`. `limit` is for tests.
 */
export function awaitDialTurn(key: string, start: () => void, limit: number = MTLS_DEFAULTS.clientHandshakesPerTarget): DialTurn {
  let gate = gates.get(key);
  if (!gate) gates.set(key, (gate = { active: 0, waiting: [], lastSuccessAt: -Infinity }));
  const g = gate;
  let state: 'waiting' | 'running' | 'over' = 'waiting';
  const run = (): void => {
    state = 'running';
    g.active++;
    start();
  };
  const forgetIfIdle = (): void => {
    if (g.active === 0 && g.waiting.length === 0 && gates.get(key) === g) gates.delete(key);
  };
  if (g.active < Math.max(1, limit)) run();
  else g.waiting.push(run);
  return {
    cancel: () => {
      if (state !== 'waiting') return;
      state = 'over';
      const i = g.waiting.indexOf(run);
      if (i >= 0) g.waiting.splice(i, 1);
      forgetIfIdle();
    },
    done: (ok = false) => {
      if (state !== 'running') return;
      state = 'over';
      if (ok) g.lastSuccessAt = performance.now();
      g.active--;
      g.waiting.shift()?.();
      forgetIfIdle();
    },
    lastSuccessAt: () => g.lastSuccessAt,
  };
}

/** Targets with a dial in flight or waiting (for tests). */
export function dialGateCount(): number {
  return gates.size;
}
