export { runPrimary } from './primary.js';
export { isReplacement, recycleOthers, replacementTurn, reportListening, workerAuditFile, workerConfig, workerId } from './worker.js';
