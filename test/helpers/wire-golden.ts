/**
 * The recorded-bytes side of the wire golden test (test/e2e/wire-golden.test.ts): how a
 * request or answer becomes a golden entry, the explicit normalisation rules for the values
 * that differ from run to run, and the golden file itself (record mode writes it, compare
 * mode prints every differing exchange with a line diff).
 *
 * Only values that are random or clock-made are replaced, each by a placeholder that keeps
 * its shape (byte length, position); everything else of a body is kept byte for byte.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The normalisation rules, in the order they apply (also written into the golden file). */
export const NORMALISATION_RULES: readonly string[] = [
  'B1 body form: empty → ""; over 4096 bytes → "<N bytes sha256:HEX>" (exact, yet short); printable UTF-8 → the text; anything else → "hex:" + hex',
  'B2 random octets: an application/octet-stream answer of /v1/cipher/encrypt (and a request body made from one) → "hex:VV <random:N>" (VV = the version byte, N = the other bytes: nonce, ciphertext, tag)',
  'J1 times: a JSON string holding an RFC 3339 time other than Go\'s zero time 0001-01-01T00:00:00Z → "<time>"',
  'J2 random base64: the string value of a JSON member named nonce, ciphertext, commitments or anchor → "<b64:N>" (N = decoded byte length)',
  'J3 share values: a JSON array of exactly 32 integers (a Shamir share: Keeper shard, recover shards, restore/contribute bodies the SDK makes) → <bytes32>',
  'H1 headers: the Date header value → "<date>"; Content-Length → "<len>" when J1 or J3 changed the body (their texts vary in length; the length is checked against the real body when captured); every other header line is kept as sent, in order',
  'H2 request IDs: the X-Request-Id header value (16 random hex digits, checked) → "<request-id>"',
  'R1 raw requests are recorded as their template: {{name}} stands for a value captured earlier in the run (a share, a ciphertext); Host and Content-Length are implicit (Host: localhost, the real length)',
];

const BIG_BODY = 4096;
const GO_ZERO_TIME = '0001-01-01T00:00:00Z';
const TIME_RE = /"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2}))"/g;
const RANDOM_B64_RE = /"(nonce|ciphertext|commitments|anchor)":"([A-Za-z0-9+/]*={0,2})"/g;
const BYTES32_RE = /\[(?:\d{1,3},){31}\d{1,3}\]/g;

export interface NormalisedBody {
  text: string;
  /** J1 or J3 replaced something (the length of the real body varies from run to run). */
  variableLength: boolean;
}

/** J1–J3 over a text body. */
export function normaliseText(text: string): NormalisedBody {
  let variableLength = false;
  let out = text.replace(TIME_RE, (m: string, t: string) => {
    if (t === GO_ZERO_TIME) return m;
    variableLength = true;
    return '"<time>"';
  });
  out = out.replace(RANDOM_B64_RE, (_m: string, name: string, b64: string) => `"${name}":"<b64:${Buffer.from(b64, 'base64').length}>"`);
  out = out.replace(BYTES32_RE, (m: string) => {
    const ints = m.slice(1, -1).split(',').map(Number);
    if (ints.some((x) => x > 255)) return m;
    variableLength = true;
    return '<bytes32>';
  });
  return { text: out, variableLength };
}

function isPrintableUtf8(b: Buffer): boolean {
  const text = b.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(b)) return false;
  return !/[\u0000-\u0008\u000b-\u001f\u007f\ufffd]/.test(text);
}

/** B1/B2 then J1–J3 over a body. */
export function normaliseBody(body: Buffer, o: { randomOctets?: boolean } = {}): NormalisedBody {
  if (body.length === 0) return { text: '', variableLength: false };
  if (o.randomOctets === true) return { text: `hex:${body.subarray(0, 1).toString('hex')} <random:${body.length - 1}>`, variableLength: false };
  if (body.length > BIG_BODY) return { text: `<${body.length} bytes sha256:${createHash('sha256').update(body).digest('hex')}>`, variableLength: false };
  if (!isPrintableUtf8(body)) return { text: `hex:${body.toString('hex')}`, variableLength: false };
  return normaliseText(body.toString('utf8'));
}

/** H1 over the answer's header lines. */
export function normaliseHeaders(headers: ReadonlyArray<readonly [string, string]>, body: Buffer, variableLength: boolean): string[] {
  return headers.map(([name, value]) => {
    const lower = name.toLowerCase();
    if (lower === 'date') return `${name}: <date>`;
    if (lower === 'x-request-id') {
      if (!/^[0-9a-f]{16}$/.test(value)) throw new Error(`X-Request-Id ${value} is not 16 hex digits`);
      return `${name}: <request-id>`;
    }
    if (lower === 'content-length') {
      if (Number(value) !== body.length) throw new Error(`Content-Length ${value} but the body has ${body.length} bytes`);
      if (variableLength) return `${name}: <len>`;
    }
    return `${name}: ${value}`;
  });
}

// ---------------------------------------------------------------------------------------------
// The golden file

export interface RawEntry {
  name: string;
  /** The caller's identity (stack name) and the server (nexus, keeper-N). */
  as: string;
  to: string;
  request: { line: string; headers: string[]; body: string };
  response: { status: string; headers: string[]; body: string } | { noAnswer: true };
}

export interface SdkEntry {
  name: string;
  /** Each request the SDK call sent, as handed to its HTTP dispatcher. */
  requests: Array<{ method: string; path: string; headers: string[]; body: string }>;
}

export interface GoldenFile {
  about: string;
  rules: readonly string[];
  exchanges: RawEntry[];
  sdk: SdkEntry[];
}

/** Repository path of the golden file, found from the compiled test's location. */
export function goldenPath(compiledTestUrl: string, relative: string): string {
  let dir = path.dirname(new URL(compiledTestUrl).pathname);
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return path.join(dir, relative);
}

export function writeGolden(file: string, g: GoldenFile): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(g, null, 2) + '\n');
}

export function readGolden(file: string): GoldenFile {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as GoldenFile;
}

/**
 * A line diff (longest common subsequence): removed lines (-) before added ones (+), with
 * `context` unchanged lines around each change and "…" where unchanged lines were left out.
 */
export function lineDiff(expected: string, actual: string, context = 3): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const lines: Array<{ mark: ' ' | '-' | '+'; text: string }> = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      lines.push({ mark: ' ', text: a[i]! });
      i++;
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      lines.push({ mark: '-', text: a[i]! });
      i++;
    } else {
      lines.push({ mark: '+', text: b[j]! });
      j++;
    }
  }
  const near = lines.map((_, k) => lines.slice(Math.max(0, k - context), k + context + 1).some((l) => l.mark !== ' '));
  const out: string[] = [];
  lines.forEach((l, k) => {
    if (near[k]) out.push(`  ${l.mark} ${l.text}`);
    else if (near[k - 1] === true || (k === 0 && !near[k])) out.push('    …');
  });
  return out.join('\n');
}

/**
 * Compares two lists of named entries; returns one readable report per difference (an entry
 * changed, missing or new), in recorded order. Empty when identical.
 */
export function compareEntries<E extends { name: string }>(
  kind: string,
  expected: readonly E[],
  actual: readonly E[],
  label: (e: E) => string = () => '',
): string[] {
  const reports: string[] = [];
  const actualByName = new Map(actual.map((e) => [e.name, e]));
  const expectedNames = new Set(expected.map((e) => e.name));
  for (const e of expected) {
    const got = actualByName.get(e.name);
    if (got === undefined) {
      reports.push(`${kind} "${e.name}": recorded but not produced by this run`);
      continue;
    }
    const want = JSON.stringify(e, null, 2);
    const have = JSON.stringify(got, null, 2);
    if (want !== have) reports.push(`${kind} "${e.name}" ${label(e)}differs (- recorded, + now):\n${lineDiff(want, have)}`);
  }
  for (const e of actual) {
    if (!expectedNames.has(e.name)) reports.push(`${kind} "${e.name}": new in this run, not recorded (re-record if intended)`);
  }
  const order = (l: readonly E[]): string => l.map((e) => e.name).filter((n) => expectedNames.has(n) && actualByName.has(n)).join('\n');
  if (order(expected) !== order(actual)) reports.push(`${kind}: the entries run in another order than recorded`);
  return reports;
}
