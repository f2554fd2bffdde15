import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../test/helpers/temp.js';
import { RootKey } from '../crypto/index.js';
import { AuditKeys, AuditUnavailableError, auditErrno, auditFailureCause, AuditWriter, GENESIS_PREV, type TrailFile, sha256Hex, splitMac, verifyTrail } from './index.js';

const tmp = (): string => tempDir('spike-audit-');
const root = RootKey.fromBytes(new Uint8Array(32).fill(7));
const keys = (): AuditKeys => new AuditKeys(root);
const read = (f: string): TrailFile => ({ name: path.basename(f), text: fs.readFileSync(f, 'utf8') });
const lines = (f: string): string[] => fs.readFileSync(f, 'utf8').trimEnd().split('\n');

/** A trail of 6 entries: 2 unkeyed, then 4 keyed. */
async function trail(dir: string): Promise<string> {
  const file = path.join(dir, 'audit.log');
  const w = new AuditWriter({ file });
  await Promise.all([w.append({ type: 'event', event: 'a' }), w.append({ type: 'event', event: 'b' })]);
  w.useKeys(keys());
  await Promise.all([1, 2, 3, 4].map((i) => w.append({ type: 'request', route: '/r', path: w.hashPath(`secrets/${i}`), status: 200 })));
  await w.close();
  return file;
}

test('writer: chain, MAC, seq; paths only as HMAC; chain continues after reopen', async () => {
  const dir = tmp();
  const file = await trail(dir);
  const ls = lines(file);
  assert.equal(ls.length, 6);
  const objs = ls.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(objs[0]!['prev'], GENESIS_PREV);
  for (let i = 1; i < ls.length; i++) assert.equal(objs[i]!['prev'], sha256Hex(ls[i - 1]!));
  assert.deepEqual(objs.map((o) => o['seq']), [1, 2, 3, 4, 5, 6]);
  assert.equal(objs[0]!['mac'], null);
  assert.equal(objs[2]!['mac'], keys().mac(splitMac(ls[2]!)!.body));
  assert.match(String(objs[2]!['path']), /^[0-9a-f]{64}$/);
  assert.ok(!fs.readFileSync(file, 'utf8').includes('secrets/'));
  assert.match(String(objs[0]!['time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const w = new AuditWriter({ file });
  await w.append({ type: 'event', event: 'again' });
  await w.close();
  const after = lines(file);
  assert.equal((JSON.parse(after[6]!) as { seq: number }).seq, 7);
  assert.equal((JSON.parse(after[6]!) as { prev: string }).prev, sha256Hex(after[5]!));
  assert.equal(verifyTrail([read(file)], keys()).ok, true);
});

test('writer: groups many entries into few syncs', async () => {
  const dir = tmp();
  let syncs = 0;
  const w = new AuditWriter({
    file: path.join(dir, 'audit.log'),
    io: {
      write: (fd, data) => new Promise((r) => fs.write(fd, data, () => r())),
      sync: async () => { syncs++; },
    },
  });
  await Promise.all(Array.from({ length: 100 }, (_, i) => w.append({ type: 'event', event: `e${i}` })));
  await w.close();
  assert.ok(syncs <= 3, `syncs=${syncs}`);
  assert.equal(lines(path.join(dir, 'audit.log')).length, 100);
});

test('writer: rotation keeps the chain across files', async () => {
  const dir = tmp();
  const file = path.join(dir, 'audit.log');
  const w = new AuditWriter({ file, maxBytes: 4096 });
  w.useKeys(keys());
  for (let i = 0; i < 60; i++) await w.append({ type: 'event', event: `event-${i}`, pad: 'x'.repeat(100) });
  await w.close();
  const names = fs.readdirSync(dir).sort();
  assert.ok(names.includes('audit.log.1') && names.includes('audit.log.2'), names.join(','));
  for (const n of names) assert.ok(fs.statSync(path.join(dir, n)).size <= 4096);
  const ordered = names.filter((n) => n !== 'audit.log').sort((a, b) => Number(b.split('.').pop()) - Number(a.split('.').pop()));
  const files = [...ordered, 'audit.log'].map((n) => read(path.join(dir, n)));
  const r = verifyTrail(files, keys());
  assert.equal(r.ok, true, JSON.stringify(r.problem));
  assert.equal(r.entries, 60);
  // out of order: reported
  assert.equal(verifyTrail([...files].reverse(), keys()).ok, false);
});

test('writer: fails closed on a write error, rolls back, then recovers', async () => {
  const dir = tmp();
  const file = path.join(dir, 'audit.log');
  let failing = false;
  const failures: number[] = [];
  const w = new AuditWriter({
    file,
    observer: { written: () => undefined, failed: (n) => failures.push(n) },
    io: {
      write: (fd, data) => new Promise((res, rej) => {
        if (failing) {
          fs.writeSync(fd, data.subarray(0, 10)); // a torn write, then ENOSPC
          rej(Object.assign(new Error('no space'), { code: 'ENOSPC' }));
          return;
        }
        fs.write(fd, data, (e) => (e ? rej(e) : res()));
      }),
      sync: async () => undefined,
    },
  });
  await w.append({ type: 'event', event: 'ok1' });
  failing = true;
  await assert.rejects(w.append({ type: 'event', event: 'lost' }), (e: unknown) => e instanceof AuditUnavailableError && e.failure === 'disk_full');
  assert.deepEqual(failures, [1]);
  failing = false;
  await w.append({ type: 'event', event: 'ok2' });
  await w.close();
  const ls = lines(file);
  assert.equal(ls.length, 2);
  assert.equal((JSON.parse(ls[1]!) as { seq: number }).seq, 2);
  assert.equal(verifyTrail([read(file)]).ok, true);
});

test('writer: a write to an unwritable file is refused', async () => {
  const dir = tmp();
  const file = path.join(dir, 'audit.log');
  const w = new AuditWriter({ file });
  await w.close();
  await assert.rejects(w.append({ type: 'event', event: 'x' }), (e: unknown) => e instanceof AuditUnavailableError && e.failure === 'closed');
});

test('failure: the errno names the cause; unknown codes are I/O errors', () => {
  const err = (code: unknown): unknown => Object.assign(new Error('x'), { code });
  assert.equal(auditFailureCause(err('ENOSPC')), 'disk_full');
  assert.equal(auditFailureCause(err('EDQUOT')), 'disk_full');
  assert.equal(auditFailureCause(err('EROFS')), 'read_only');
  assert.equal(auditFailureCause(err('EACCES')), 'read_only');
  assert.equal(auditFailureCause(err('EIO')), 'io_error');
  assert.equal(auditFailureCause(err(undefined)), 'io_error');
  assert.equal(auditFailureCause(undefined), 'io_error');
  assert.equal(new AuditUnavailableError(err('EROFS')).failure, 'read_only');
  assert.equal(auditErrno(err('ENOSPC')), 'ENOSPC');
  assert.equal(auditErrno(err('/secret/path: nope')), '');
});

/** Runs the verifier on a tampered copy of the 6-line trail. */
async function tampered(edit: (ls: string[]) => string): Promise<ReturnType<typeof verifyTrail>> {
  const file = await trail(tmp());
  return verifyTrail([{ name: 'audit.log', text: edit(lines(file)) }], keys());
}
const join = (ls: string[]): string => `${ls.join('\n')}\n`;

test('verify: an intact trail passes, with and without the key', async () => {
  const file = await trail(tmp());
  const r = verifyTrail([read(file)], keys());
  assert.deepEqual([r.ok, r.entries, r.keyed, r.unauthenticated], [true, 6, 4, 0]);
  assert.equal(verifyTrail([read(file)]).ok, true);
});

test('verify: editing one field of a keyed entry is caught at that entry', async () => {
  const r = await tampered((ls) => join(ls.map((l, i) => (i === 3 ? l.replace('"status":200', '"status":201') : l))));
  assert.equal(r.problem?.kind, 'edited');
  assert.equal(r.problem?.line, 4);
});

test('verify: editing an unkeyed entry is caught through the chain at that entry', async () => {
  const r = await tampered((ls) => join(ls.map((l, i) => (i === 1 ? l.replace('"event":"b"', '"event":"c"') : l))));
  assert.equal(r.problem?.kind, 'edited');
  assert.equal(r.problem?.line, 2);
});

test('verify: a deleted line is caught where it was', async () => {
  const r = await tampered((ls) => join(ls.filter((_, i) => i !== 3)));
  assert.equal(r.problem?.kind, 'deleted');
  assert.equal(r.problem?.line, 4);
  assert.match(r.problem!.message, /entries 4…4 missing/);
});

test('verify: two swapped lines are caught as reordered', async () => {
  const r = await tampered((ls) => join([ls[0]!, ls[1]!, ls[3]!, ls[2]!, ls[4]!, ls[5]!]));
  assert.equal(r.problem?.kind, 'reordered');
  assert.equal(r.problem?.line, 3);
});

test('verify: a truncated file is caught at the torn line', async () => {
  const r = await tampered((ls) => join(ls).slice(0, -40));
  assert.equal(r.problem?.kind, 'malformed');
  assert.equal(r.problem?.line, 6);
});

test('verify: an entry forged without the key is caught', async () => {
  const r = await tampered((ls) => {
    const last = ls[ls.length - 1]!;
    const o = JSON.parse(last) as Record<string, unknown>;
    const forged = JSON.stringify({ ...o, seq: 7, prev: sha256Hex(last), route: '/forged', mac: 'ab'.repeat(32) });
    return join([...ls, forged]);
  });
  assert.equal(r.problem?.kind, 'forged');
  assert.equal(r.problem?.line, 7);
  // an unkeyed forgery appended at the end links correctly but no MAC covers it: counted
  const r2 = await tampered((ls) => {
    const last = ls[ls.length - 1]!;
    const forged = `{"time":"2026-01-01T00:00:00.000Z","seq":7,"type":"event","event":"x","prev":"${sha256Hex(last)}","mac":null}`;
    return join([...ls, forged]);
  });
  assert.equal(r2.ok, true);
  assert.equal(r2.unauthenticated, 1);
  // …and one inserted before a keyed entry breaks the keyed entry's MAC'd link
  const r3 = await tampered((ls) => {
    const forged = `{"time":"2026-01-01T00:00:00.000Z","seq":4,"type":"event","event":"x","prev":"${sha256Hex(ls[2]!)}","mac":null}`;
    return join([...ls.slice(0, 3), forged, ...ls.slice(3)]);
  });
  assert.equal(r3.ok, false);
  assert.equal(r3.problem?.line, 5);
});

test('verify: a MAC under another key is refused', async () => {
  const file = await trail(tmp());
  const other = new AuditKeys(RootKey.fromBytes(new Uint8Array(32).fill(9)));
  const r = verifyTrail([read(file)], other);
  assert.equal(r.problem?.kind, 'edited');
  assert.equal(r.problem?.line, 3);
});

test('writer: a torn last line (crash mid-write) is cut at the next start; the trail verifies', async () => {
  const dir = tmp();
  const file = await trail(dir);
  fs.appendFileSync(file, '{"time":"2026-01-01T00:00:00.000Z","seq":7,"ty');
  const w = new AuditWriter({ file });
  await w.append({ type: 'event', event: 'after-crash' });
  await w.close();
  const ls = lines(file);
  assert.equal(ls.length, 7);
  assert.equal((JSON.parse(ls[6]!) as { seq: number }).seq, 7);
  assert.equal(verifyTrail([read(file)]).ok, true);
});
