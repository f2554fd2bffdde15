export { runPrimary } from './primary.js';
export { isReplacement, recycleOthers, replaceMe, replacementTurn, reportListening, workerAuditFile, workerConfig, workerId } from './worker.js';
