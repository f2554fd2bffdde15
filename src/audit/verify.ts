/**
 * Verification of an audit trail (format.ts), offline or with the MACs checked by Nexus
 * ({@link MacCheck}): the files in order, oldest first (`audit.log.N … audit.log.1
 * audit.log`), read as one chain. Reports the first problem:
 *
 * - `malformed`: a line that is not a complete entry (a torn or truncated write, or an edit
 *   that broke the JSON);
 * - `edited`:    with the key, the entry's MAC does not match (its content was changed, or it
 *   was forged by someone without the key); without the key, the next entry's `prev` does not
 *   match this line;
 * - `deleted`:   the sequence number jumps forward and the missing ones never appear;
 * - `reordered`: the sequence number jumps, and the skipped entry appears later;
 * - `forged`:    an unkeyed entry (`mac: null`) after the trail's keyed entries whose chain
 *   link is wrong, or a MAC-shaped value that does not verify on a line appended at the end.
 *
 * Entries after the last keyed entry are covered by no MAC (written while sealed — or
 * appended by someone without the key); they are counted as `unauthenticated`.
 */
import { type AuditKeys, GENESIS_PREV, sha256Hex, splitMac } from './format.js';

export interface TrailFile {
  name: string;
  text: string;
}

export interface VerifyProblem {
  kind: 'malformed' | 'edited' | 'deleted' | 'reordered' | 'forged';
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  /** The sequence number found there (undefined when unreadable). */
  seq: number | undefined;
  message: string;
  /** Where the check stopped: the position (0-based, across files) of the entry being checked. */
  at: number;
}

export interface VerifyResult {
  ok: boolean;
  entries: number;
  keyed: number;
  /** Entries after the last keyed one (no MAC covers them); 0 when no key was given. */
  unauthenticated: number;
  problem: VerifyProblem | undefined;
}

interface Parsed {
  file: string;
  line: number;
  raw: string;
  seq: number | undefined;
  prev: string | undefined;
  mac: string | null | undefined;
  body: string | undefined;
}

function parseLine(file: string, line: number, raw: string): Parsed {
  const split = splitMac(raw);
  let seq: number | undefined;
  let prev: string | undefined;
  try {
    const o = JSON.parse(raw) as { seq?: unknown; prev?: unknown };
    if (typeof o.seq === 'number' && Number.isSafeInteger(o.seq)) seq = o.seq;
    if (typeof o.prev === 'string' && /^[0-9a-f]{64}$/.test(o.prev)) prev = o.prev;
  } catch {
    /* malformed */
  }
  return { file, line, raw, seq, prev, mac: split?.mac, body: split?.body };
}

/**
 * Checks one keyed entry's MAC: `index` is the entry's position in the whole trail (0-based,
 * across files), `body` the MAC'd bytes, `mac` the hex it carries. Offline it is
 * {@link AuditKeys.verify}; online (`spike audit verify --online`) it is Nexus's answer.
 */
export type MacCheck = (index: number, body: string, mac: string) => boolean;

/** Every line of the trail, in order, parsed (a line without its newline is torn: no MAC). */
function parseTrail(files: readonly TrailFile[]): Parsed[] {
  const all: Parsed[] = [];
  for (const f of files) {
    const lines = f.text.split('\n');
    const complete = f.text.endsWith('\n') || f.text === '';
    if (complete) lines.pop();
    lines.forEach((raw, i) => all.push(parseLine(f.name, i + 1, raw)));
    if (!complete) all[all.length - 1]!.mac = undefined;
  }
  return all;
}

/** The keyed lines of the trail (those with a MAC to check) and their trail positions. */
export function keyedLines(files: readonly TrailFile[]): Array<{ index: number; line: string }> {
  const out: Array<{ index: number; line: string }> = [];
  parseTrail(files).forEach((p, index) => {
    if (typeof p.mac === 'string' && p.body !== undefined) out.push({ index, line: p.raw });
  });
  return out;
}

/** Verifies the trail; `keys` (from the recovery shards) or a {@link MacCheck} enables the MAC check. */
export function verifyTrail(files: readonly TrailFile[], keys?: AuditKeys | MacCheck): VerifyResult {
  const all = parseTrail(files);
  const check: MacCheck | undefined = keys === undefined ? undefined
    : typeof keys === 'function' ? keys : (_i, body, mac) => keys.verify(body, mac);
  let keyed = 0;
  let lastKeyedIndex = -1;
  let at = 0;
  const fail = (p: Parsed, kind: VerifyProblem['kind'], message: string): VerifyResult => ({
    ok: false, entries: all.length, keyed, unauthenticated: 0,
    problem: { kind, file: p.file, line: p.line, seq: p.seq, message, at },
  });
  let prevHash: string | undefined;
  let prevSeq: number | undefined;
  for (let i = 0; i < all.length; i++) {
    at = i;
    const p = all[i]!;
    if (p.seq === undefined || p.prev === undefined || p.mac === undefined || p.body === undefined) {
      return fail(p, 'malformed', 'not a complete audit entry (torn, truncated or edited)');
    }
    if (check !== undefined && p.mac !== null) {
      if (!check(i, p.body, p.mac)) {
        const last = i === all.length - 1 && p.prev === prevHash && p.seq === (prevSeq ?? 0) + 1;
        return fail(p, last ? 'forged' : 'edited', 'MAC does not verify: entry edited, or forged without the key');
      }
      keyed++;
      lastKeyedIndex = i;
    }
    if (prevSeq !== undefined && p.seq !== prevSeq + 1) {
      if (p.seq > prevSeq + 1) {
        const missing = prevSeq + 1;
        const later = all.slice(i + 1).some((q) => q.seq === missing);
        return later
          ? fail(p, 'reordered', `entry ${missing} expected here, found ${p.seq}: entries reordered`)
          : fail(p, 'deleted', `entries ${missing}…${p.seq - 1} missing: deleted`);
      }
      return fail(p, 'reordered', `entry ${p.seq} after ${prevSeq}: entries reordered or replayed`);
    }
    if (prevHash !== undefined ? p.prev !== prevHash : p.prev !== GENESIS_PREV && i > 0) {
      const before = all[i - 1]!;
      if (p.mac === null && check !== undefined && lastKeyedIndex >= 0) {
        return fail(p, 'forged', 'unkeyed entry does not link to the one before it');
      }
      return fail(before, 'edited', `entry ${before.seq ?? '?'} does not match the hash the next entry holds: edited`);
    }
    prevHash = sha256Hex(p.raw);
    prevSeq = p.seq;
  }
  return {
    ok: true, entries: all.length, keyed,
    unauthenticated: check === undefined ? 0 : all.length - 1 - lastKeyedIndex,
    problem: undefined,
  };
}
