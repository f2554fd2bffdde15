/**
 * Test helper (not a test) for src/store/sqlite/checkpointer.test.ts: opens the SQLite store at
 * `<file>` with the test root key in SPIKE_TEST_ROOT_HEX and checkpoints every `<frames>` log
 * pages, then runs 8 writers until it is killed (each on paths of its own, one write at a time).
 * Each write is a line `{"try":"<path>","value":"<value>"}` before it starts and, once its
 * promise resolved, `{"ack":"<path>","value":"<value>"}`; after each
 * acknowledgement a line `{"checkpoints":N}` tells the parent how many checkpoints the worker
 * thread has finished.
 * Usage: node checkpoint-writer.child.js <file> <frames>
 */
import { RootKey } from '../../src/crypto/index.js';
import { SqliteStore } from '../../src/store/index.js';

const [file, frames] = process.argv.slice(2);
const hex = process.env['SPIKE_TEST_ROOT_HEX'];
if (file === undefined || frames === undefined || hex === undefined) throw new Error('usage: checkpoint-writer.child.js <file> <frames> (SPIKE_TEST_ROOT_HEX set)');
const store = new SqliteStore({ file, checkpoints: { frames: Number(frames) } });
await store.unlock(RootKey.fromBytes(Buffer.from(hex, 'hex')));

async function writer(w: number): Promise<never> {
  for (let i = 0; ; i++) {
    const path = `ckpt/w${w}/k${i % 25}`;
    const value = `${process.pid}-${w}-${i}-${'v'.repeat(1500)}`;
    process.stdout.write(`${JSON.stringify({ try: path, value })}\n`);
    await store.putSecret(path, { v: value });
    process.stdout.write(`${JSON.stringify({ ack: path, value })}\n${JSON.stringify({ checkpoints: store.stats().checkpoints?.checkpoints ?? 0 })}\n`);
  }
}
await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
