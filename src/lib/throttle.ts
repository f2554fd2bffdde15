/**
 * Warnings that traffic can trigger, with a bounded log volume.
 *
 * Events an outsider can cause at will (dropped or evicted connections, handshake failures,
 * rejected certificates) must not turn into one log line each: a flood of plain TCP
 * connections would otherwise write gigabytes. A {@link LogThrottle} writes the first
 * occurrence of each event kind at once (so a single incident is still visible with its
 * details), then only counts, and once per interval writes one summary line per kind that
 * occurred: `{"event": …, "kind": <kind>, "suppressed": n, "intervalMs": …}`. A kind's
 * lines carry `event` = the `event` field given with it, else the kind itself.
 *
 * Kinds are stable codes chosen by the caller (never input text), so the number of kinds,
 * and with it the number of lines per interval, is bounded by the code.
 */
import type { Logger } from './log.js';

interface LogThrottleOptions {
  /** Summary period; default 10 s; 0 logs every occurrence (tests). */
  intervalMs?: number;
}

interface LogThrottle {
  /**
   * Records one occurrence of `kind`. The first one of an interval is logged at warn with
   * `fields`; later ones are counted into the next summary line.
   */
  warn(kind: string, fields: Record<string, unknown>, msg: string): void;
  /** Occurrences of `kind` since start (tests, metrics). */
  count(kind: string): number;
  /** Writes pending summaries now and stops the timer. */
  close(): void;
}

const LOG_THROTTLE_DEFAULT_INTERVAL_MS = 10_000;

export function createLogThrottle(logger: Logger, opts: LogThrottleOptions = {}): LogThrottle {
  const intervalMs = opts.intervalMs ?? LOG_THROTTLE_DEFAULT_INTERVAL_MS;
  /** Per kind: occurrences logged or counted in the current interval; total since start. */
  const current = new Map<string, { seen: number; msg: string; event: unknown }>();
  const totals = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;

  const flush = (): void => {
    for (const [kind, c] of current) {
      if (c.seen > 1) logger.warn({ event: c.event, kind, suppressed: c.seen - 1, intervalMs }, `${c.msg} (repeated)`);
    }
    current.clear();
  };
  const tick = (): void => {
    flush();
    timer = undefined;
  };

  return {
    warn(kind, fields, msg) {
      totals.set(kind, (totals.get(kind) ?? 0) + 1);
      if (intervalMs === 0) {
        logger.warn({ event: kind, ...fields }, msg);
        return;
      }
      const c = current.get(kind);
      if (c !== undefined) {
        c.seen++;
        return;
      }
      current.set(kind, { seen: 1, msg, event: fields['event'] ?? kind });
      logger.warn({ event: kind, ...fields }, msg);
      if (timer === undefined) {
        timer = setTimeout(tick, intervalMs);
        timer.unref();
      }
    },
    count(kind) {
      return totals.get(kind) ?? 0;
    },
    close() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      flush();
    },
  };
}
