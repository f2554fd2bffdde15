/**
 * Ground-floor helpers every component uses and that import nothing else of SPIKE: the base
 * error class, the redacting logger and its throttle, typed environment readers, process
 * start/stop, core-dump hardening, backoff for retry loops, the event-loop yield and giving freed native memory back.
 */
export { SpikeError, errInfo } from './errors.js';
export { createLogger, parseLevel } from './log.js';
export type { Logger } from './log.js';
export { hardenServer } from './hardening.js';
export { fail, installShutdown } from './process.js';
export { Backoff, backoffDelay } from './backoff.js';
export { ConfigError, bool, duration, httpsUrlList, int, listenAddress, oneOf, optionalStr, str } from './env.js';
export type { Env, ListenAddress } from './env.js';
export { RoundRobin, sliceTurn, yieldToLoop } from './yield.js';
export { freshTurn, freshTurnWaiting, spendTurnWork, turnWorkFits } from './turn-work.js';
export { foreignAncestor, type ForeignPath } from './owned-path.js';
export { createLogThrottle } from './throttle.js';
export { outsideRequest, remainingMs, runWithDeadline } from './deadline.js';
export { ALLOCATOR_ENV } from './allocator.js';
export { packageVersion } from './version.js';
export { mallocTrimReading, processTrimmer } from './malloc-trim.js';
export type { MallocTrimmer } from './malloc-trim.js';
