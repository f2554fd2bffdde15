/**
 * Denials in the log, bounded: every 401 a guard gives is counted per route and logged
 * through a LogThrottle — the first of each route and interval at once, then one summary
 * line per route and interval with the count. A caller hammering a route it may not use
 * (or a fleet whose policies were removed) writes a few lines, not one per request.
 * Route names are the route table's (a fixed set), never request text.
 */
import type { RequestObserver } from '../http/index.js';
import { createLogThrottle, type Logger } from '../lib/index.js';

/** Summary period of denial lines. */
const DENIAL_LOG_INTERVAL_MS = 10_000;

interface DenialLog {
  /** An observer that records denials and forwards every event to `next` (metrics). */
  observe(next: RequestObserver | undefined): RequestObserver;
  close(): void;
}

export function denialLog(logger: Logger, intervalMs = DENIAL_LOG_INTERVAL_MS): DenialLog {
  const throttle = createLogThrottle(logger, { intervalMs });
  return {
    observe(next) {
      return {
        started: () => next?.started(),
        finished: (e) => {
          next?.finished(e);
          if (e.decision === 'deny') {
            throttle.warn(`denied ${e.route}${e.action ? `?action=${e.action}` : ''}`,
              { event: 'request_denied', route: e.route, action: e.action, status: e.status }, 'request denied by policy');
          }
        },
      };
    },
    close: () => throttle.close(),
  };
}
