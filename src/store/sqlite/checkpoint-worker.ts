/**
 * The checkpoint thread of the `sqlite` backend (checkpointer.ts explains when and why it runs):
 * its source, run with `eval`, and the replies it posts.
 */

/**
 * The worker thread's code: plain CommonJS run with `eval` (a bundled command has no module
 * file of its own to start a worker from). It opens its own connection and answers each
 * `checkpoint` message with the checkpoint's result or its error code. No key, path or value
 * ever reaches it: it sees only database pages, as SQLite copies them.
 */
export const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const options = { fileMustExist: true, timeout: workerData.lockWaitMs };
if (workerData.binding !== null) options.nativeBinding = workerData.binding;
const db = new Database(workerData.file, options);
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');
db.pragma('cache_size = -256');
const passive = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const run = db.prepare(workerData.statement);
const fs = require('node:fs');
const wantsLock = new Int32Array(workerData.wantsLock);
parentPort.on('message', (m) => {
  if (m === 'close') { db.close(); parentPort.close(); return; }
  try {
    passive.get();
    fs.fdatasyncSync(workerData.fd);
    Atomics.store(wantsLock, 0, 1);
    let r;
    try { r = run.get(); } finally { Atomics.store(wantsLock, 0, 0); }
    parentPort.postMessage({ ok: true, busy: r.busy, log: r.log, checkpointed: r.checkpointed });
  } catch (e) {
    parentPort.postMessage({ ok: false, code: String((e && e.code) || 'error') });
  }
});
parentPort.postMessage({ ready: true });
`;

/** One reply of the worker: `ready` once at start, then one per `checkpoint` message (the result, or the error code). */
export interface CheckpointReply {
  ok?: boolean;
  ready?: boolean;
  busy?: number;
  log?: number;
  checkpointed?: number;
  code?: string;
}
