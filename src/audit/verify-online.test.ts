/**
 * The online MAC check (what `spike audit verify --online` does with Nexus's answer): the
 * keyed lines' first invalid MAC, found by `firstInvalidMac` (Nexus's side), fed back as a
 * `MacCheck`, finds every kind of tampering at the same entry as the offline check with the
 * key; `AuditKeys.verify` compares in constant time and refuses malformed MACs.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../test/helpers/temp.js';
import { RootKey } from '../crypto/index.js';
import { AuditKeys, AuditWriter, type MacCheck, type TrailFile, firstInvalidMac, keyedLines, sha256Hex, splitMac, verifyTrail } from './index.js';

const root = RootKey.fromBytes(new Uint8Array(32).fill(7));
const join = (ls: string[]): string => `${ls.join('\n')}\n`;

async function trailLines(): Promise<string[]> {
  const file = path.join(tempDir('spike-audit-online-'), 'audit.log');
  const w = new AuditWriter({ file });
  await Promise.all([w.append({ type: 'event', event: 'a' }), w.append({ type: 'event', event: 'b' })]);
  w.useKeys(new AuditKeys(root));
  await Promise.all([1, 2, 3, 4, 5].map((i) => w.append({ type: 'request', route: '/r', path: w.hashPath(`secrets/${i}`), status: 200 })));
  await w.close();
  return fs.readFileSync(file, 'utf8').trimEnd().split('\n');
}

/** What the CLI does online, with `serverKeys` standing in for Nexus. */
function online(files: TrailFile[], serverKeys: AuditKeys): MacCheck {
  const chain = verifyTrail(files);
  const until = keyedLines(files).filter((k) => chain.problem === undefined || k.index <= chain.problem.at);
  const bad = firstInvalidMac(serverKeys, until.map((k) => k.line));
  const badIndex = bad === null ? -1 : until[bad]!.index;
  return (i) => i !== badIndex;
}

test('online check: every kind of tampering is found at the same entry as offline', async () => {
  const ls = await trailLines();
  const last = ls[ls.length - 1]!;
  const cases: Record<string, string> = {
    intact: join(ls),
    edit: join(ls.map((l, i) => (i === 4 ? l.replace('"status":200', '"status":201') : l))),
    editUnkeyed: join(ls.map((l, i) => (i === 1 ? l.replace('"event":"b"', '"event":"c"') : l))),
    delete: join(ls.filter((_, i) => i !== 3)),
    swap: join([...ls.slice(0, 3), ls[4]!, ls[3]!, ...ls.slice(5)]),
    truncate: join(ls).slice(0, -40),
    forge: join([...ls, JSON.stringify({ ...(JSON.parse(last) as object), seq: 8, prev: sha256Hex(last), mac: 'ab'.repeat(32) })]),
  };
  const keys = new AuditKeys(root);
  for (const [name, text] of Object.entries(cases)) {
    const files = [{ name: 'audit.log', text }];
    const off = verifyTrail(files, keys);
    const on = verifyTrail(files, online(files, keys));
    assert.deepEqual(on, off, name);
    assert.equal(off.ok, name === 'intact', name);
  }
  const files = [{ name: 'audit.log', text: join(ls) }];
  const other = verifyTrail(files, online(files, new AuditKeys(RootKey.fromBytes(new Uint8Array(32).fill(9)))));
  assert.equal(other.problem?.kind, 'edited');
  assert.equal(other.problem?.line, 3, 'the first keyed entry fails under another key');
  assert.equal(other.keyed, 0);
});

test('online check: keyedLines spans rotated files; firstInvalidMac refuses unkeyed and malformed lines', async () => {
  const ls = await trailLines();
  const files = [{ name: 'audit.log.1', text: join(ls.slice(0, 4)) }, { name: 'audit.log', text: join(ls.slice(4)) }];
  assert.deepEqual(keyedLines(files).map((k) => k.index), [2, 3, 4, 5, 6]);
  const keys = new AuditKeys(root);
  assert.equal(firstInvalidMac(keys, ls.slice(2)), null);
  assert.equal(firstInvalidMac(keys, [ls[2]!, ls[0]!]), 1, 'an unkeyed line does not verify');
  assert.equal(firstInvalidMac(keys, [ls[2]!, 'not json']), 1);
  const { body, mac } = splitMac(ls[2]!)!;
  assert.ok(keys.verify(body, mac!));
  assert.ok(!keys.verify(body, mac!.slice(0, 62)), 'a short MAC');
  assert.ok(!keys.verify(`${body} `, mac!));
});
