/**
 * Deferred audit entries (AuditWriter.appendDeferred): entries nobody waits for start no flush
 * of their own; they ride the next awaited entry's flush, or are flushed after DEFER_MS.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../test/helpers/temp.js';
import { AuditWriter, type AuditIo, verifyTrail } from './index.js';
import { DEFER_MS } from './writer.js';

const lines = (f: string): string[] => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter((l) => l !== '') : []);
const events = (f: string): string[] => lines(f).map((l) => (JSON.parse(l) as { event: string }).event);

/**
 * Real file I/O that counts its writes and syncs; with `gate`, every sync first waits for it
 * (a sync held open while the test appends more).
 */
function countingIo(gate?: Promise<void>): AuditIo & { writes: number; syncs: number } {
  const io = {
    writes: 0,
    syncs: 0,
    write: (fd: number, data: Buffer) => {
      io.writes++;
      return new Promise<void>((res, rej) => fs.write(fd, data, (e) => (e ? rej(e) : res())));
    },
    sync: async (fd: number) => {
      await gate;
      io.syncs++;
      return new Promise<void>((res, rej) => fs.fdatasync(fd, (e) => (e ? rej(e) : res())));
    },
  };
  return io;
}

/** A promise the test resolves when it chooses. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((r) => { open = r; });
  return { opened, open };
}

/** A writer on a fresh audit file in a temp folder, through `io`. */
function openWriter(io: AuditIo): { file: string; w: AuditWriter } {
  const file = path.join(tempDir('spike-audit-defer-'), 'audit.log');
  return { file, w: new AuditWriter({ file, io }) };
}

test('audit: deferred entries ride the next awaited entry\'s flush, in chain order', async () => {
  const io = countingIo();
  const { file, w } = openWriter(io);
  const deferred = [w.appendDeferred({ type: 'event', event: 'r1' }), w.appendDeferred({ type: 'event', event: 'r2' })];
  assert.equal(io.writes, 0, 'a deferred entry starts no write');
  await w.append({ type: 'event', event: 'intent' });
  await Promise.all(deferred);
  assert.equal(io.syncs, 1, 'one flush carried all three');
  assert.deepEqual(events(file), ['r1', 'r2', 'intent']);
  await w.close();
  assert.equal(verifyTrail([{ name: 'audit.log', text: fs.readFileSync(file, 'utf8') }]).ok, true);
});

test('audit: a deferred entry with no awaited one after it reaches the disk on its own', async () => {
  const io = countingIo();
  const { file, w } = openWriter(io);
  const t0 = performance.now();
  await w.appendDeferred({ type: 'event', event: 'alone' });
  assert.ok(performance.now() - t0 >= DEFER_MS - 2, 'it waited for an awaited entry first');
  assert.deepEqual(events(file), ['alone']);
  assert.equal(io.syncs, 1);
  await w.close();
});

test('audit: deferred entries appended during a flush do not start another one', async () => {
  const g = gate();
  const io = countingIo(g.opened);
  const { file, w } = openWriter(io);
  const first = w.append({ type: 'event', event: 'intent1' });
  const during = w.appendDeferred({ type: 'event', event: 'result1' });
  g.open();
  await first;
  assert.equal(io.syncs, 1);
  assert.deepEqual(events(file), ['intent1'], 'the result waits for its own time or the next intent');
  await w.append({ type: 'event', event: 'intent2' });
  await during;
  assert.equal(io.syncs, 2);
  assert.deepEqual(events(file), ['intent1', 'result1', 'intent2']);
  await w.close();
});

test('audit: an awaited entry appended during a deferred-only flush is written right after it, not after the timer', async () => {
  const g = gate();
  const io = countingIo(g.opened);
  const { file, w } = openWriter(io);
  const deferred = w.appendDeferred({ type: 'event', event: 'result' });
  while (io.writes === 0) await new Promise((r) => setTimeout(r, 5)); // the timer's flush began
  const intent = w.append({ type: 'event', event: 'intent' });
  g.open();
  await deferred;
  // The flush loop goes straight on to the queued awaited line: its write has begun by the time
  // the first round's promises run their continuations (a timer would start it 20 ms later).
  assert.equal(io.writes, 2, 'the awaited line did not wait for the deferral timer');
  await intent;
  assert.deepEqual(events(file), ['result', 'intent']);
  await w.close();
});

test('audit: close writes the deferred entries at once', async () => {
  const io = countingIo();
  const { file, w } = openWriter(io);
  const d = w.appendDeferred({ type: 'event', event: 'last' });
  const closed = w.close();
  assert.equal(io.writes, 1, 'close started the write itself (no wait for the deferral timer)');
  await closed;
  await d;
  assert.deepEqual(events(file), ['last']);
});

test('audit: a deferred entry appended while a failing write runs is rejected with it; the chain resumes cleanly', async () => {
  let fail: (e: Error) => void = () => undefined;
  let failing = true;
  const io: AuditIo = {
    write: (fd, data) => new Promise((res, rej) => {
      if (failing) {
        fail = rej;
        return;
      }
      fs.write(fd, data, (e) => (e ? rej(e) : res()));
    }),
    sync: async () => undefined,
  };
  const { file, w } = openWriter(io);
  const intent = w.append({ type: 'event', event: 'intent' });
  const during = w.appendDeferred({ type: 'event', event: 'during' });
  failing = false;
  fail(Object.assign(new Error('I/O error'), { code: 'EIO' }));
  await assert.rejects(intent, { code: 'audit_unavailable' });
  await assert.rejects(during, { code: 'audit_unavailable' });
  await w.append({ type: 'event', event: 'next' });
  assert.deepEqual(events(file), ['next']);
  await w.close();
  assert.equal(verifyTrail([{ name: 'audit.log', text: fs.readFileSync(file, 'utf8') }]).ok, true);
});

test('audit: a failed flush rejects the deferred entries it carried; the next entry still writes', async () => {
  let failing = true;
  const io: AuditIo = {
    write: (fd, data) => new Promise((res, rej) => {
      if (failing) return rej(Object.assign(new Error('no space'), { code: 'ENOSPC' }));
      fs.write(fd, data, (e) => (e ? rej(e) : res()));
    }),
    sync: async () => undefined,
  };
  const { file, w } = openWriter(io);
  const d = w.appendDeferred({ type: 'event', event: 'lost' });
  await assert.rejects(w.append({ type: 'event', event: 'intent' }), { code: 'audit_unavailable' });
  await assert.rejects(d, { code: 'audit_unavailable' });
  failing = false;
  await w.append({ type: 'event', event: 'after' });
  assert.deepEqual(events(file), ['after']);
  await w.close();
  assert.equal(verifyTrail([{ name: 'audit.log', text: fs.readFileSync(file, 'utf8') }]).ok, true);
});
