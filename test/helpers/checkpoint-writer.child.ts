/**
 * Test helper (not a test) for src/store/sqlite/checkpointer.test.ts: opens the SQLite store at
 * `<file>` with the test root key in SPIKE_TEST_ROOT_HEX and checkpoints every `<frames>` log
 * pages, then runs 8 writers (each on paths of its own, one write at a time). Each write is a
 * line `{"try":"<path>","value":"<value>"}` before it starts and, once its promise resolved,
 * `{"ack":"<path>","value":"<value>"}`, both appended to the ledger file `<ledger>` with a
 * synchronous write: a line is in the kernel's page cache before the write it describes starts
 * (or after it was acknowledged), so a SIGKILL cannot lose it (it can cut the line being
 * written short; the parent skips a cut last line). On stdout they could be lost: a pipe the
 * loaded parent drains slowly fills, Node queues the rest in the process, and the kill drops
 * the queue; a write then reads back that the parent never saw tried. After each
 * acknowledgement a line `{"checkpoints":N}` on stdout tells the parent how many checkpoints
 * the worker thread has finished (losing one only delays the parent's kill).
 * Without `<statement>` the writers run until the process is killed. With it, the worker runs
 * that statement instead of its FULL checkpoint (a failing one, to stop the store): the writers
 * stop at the first refused write, the store is closed, `{"closed":true}` is printed, and the
 * process exits by itself.
 * Usage: node checkpoint-writer.child.js <file> <ledger> <frames> [statement]
 */
import fs from 'node:fs';
import { RootKey } from '../../src/crypto/index.js';
import { SqliteStore } from '../../src/store/index.js';

const [file, ledger, frames, statement] = process.argv.slice(2);
const hex = process.env['SPIKE_TEST_ROOT_HEX'];
if (file === undefined || ledger === undefined || frames === undefined || hex === undefined) throw new Error('usage: checkpoint-writer.child.js <file> <ledger> <frames> [statement] (SPIKE_TEST_ROOT_HEX set)');
const ledgerFd = fs.openSync(ledger, 'a');
const note = (line: { try: string; value: string } | { ack: string; value: string }): void => {
  fs.writeSync(ledgerFd, `${JSON.stringify(line)}\n`);
};
const store = new SqliteStore({ file, checkpoints: { frames: Number(frames), ...(statement !== undefined ? { statement } : {}) } });
await store.unlock(RootKey.fromBytes(Buffer.from(hex, 'hex')));
let stopped = false;

async function writer(w: number): Promise<void> {
  for (let i = 0; !stopped; i++) {
    const path = `ckpt/w${w}/k${i % 25}`;
    const value = `${process.pid}-${w}-${i}-${'v'.repeat(1500)}`;
    note({ try: path, value });
    try {
      await store.putSecret(path, { v: value });
    } catch (e) {
      if (statement === undefined || (e as { code?: string }).code !== 'store_unavailable') throw e;
      stopped = true;
      return;
    }
    note({ ack: path, value });
    process.stdout.write(`${JSON.stringify({ checkpoints: store.stats().checkpoints?.checkpoints ?? 0 })}\n`);
  }
}
await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
await store.close();
process.stdout.write(`${JSON.stringify({ closed: true })}\n`);
