/**
 * Lint: no secret bytes are ever turned into a JS string in `src/crypto/`.
 *
 * Heuristic, applied to every non-test `src/crypto/*.ts` after stripping comments:
 *   1. `.toString(`, `String(`, `TextDecoder`/`.decode(`, `JSON.stringify(` and `.toJSON(`
 *      calls on anything are forbidden outright — the module never needs them (`toJSON()`
 *      *definitions* that return a fixed placeholder are allowed). Constant ASCII is made
 *      with `Buffer.from(literal, 'latin1')`, which goes the safe way (string → bytes).
 *   2. A template literal `${…}` is allowed only when its expression names no secret-
 *      looking identifier (key, value, secret, share, seed, bytes, buf, plain, ikm, block,
 *      coeff, scalar, nonce, tag, body, out) — or is exactly `<identifier>.id` (share ids
 *      are public).
 *   3. String concatenation of a secret-looking identifier with a quoted string
 *      (`'…' + value`, `value + '…'`) is forbidden.
 * It is a heuristic, not a proof: it catches the usual ways bytes become strings
 * (`buf.toString('hex')`, `${key}`, `'' + value`). The checker is itself tested below
 * against bad samples so that it can fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../test/helpers/bin.js';

const SECRETISH = /key|value|secret|share|seed|bytes|buf|plain|ikm|block|coeff|scalar|nonce|tag|body|out/i;

function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"])\/\/.*$/gm, '$1');
}

/** Returns the offending lines (1-based "line: text"). */
export function findStringConversions(src: string): string[] {
  const hits: string[] = [];
  stripComments(src).split('\n').forEach((line, i) => {
    const bad = (why: string): void => void hits.push(`${i + 1}: ${why}: ${line.trim()}`);
    if (/\.toString\s*\(/.test(line)) bad('toString(');
    if (/(^|[^\w.])String\s*\(/.test(line)) bad('String(');
    if (/TextDecoder|\.decode\s*\(/.test(line)) bad('decode');
    if (/JSON\.stringify\s*\(/.test(line)) bad('JSON.stringify');
    if (/\.toJSON\s*\(/.test(line)) bad('toJSON call');
    for (const m of line.matchAll(/\$\{([^}]*)\}/g)) {
      const expr = m[1]!.trim();
      if (!/^[A-Za-z_$][\w$]*\.id$/.test(expr) && SECRETISH.test(expr)) bad('template literal');
    }
    if (/(['"`]\s*\+\s*[\w.$]*(key|value|secret|share|seed|bytes|buf|plain|ikm|block))|([\w.$]*(key|value|secret|share|seed|bytes|buf|plain|ikm|block)\w*\s*\+\s*['"`])/i.test(line)) {
      bad('string concatenation');
    }
  });
  return hits;
}

test('LINT: the checker catches the usual ways bytes become strings', () => {
  const samples = [
    "const h = key.toString('hex');",
    'const s = String(shareValue);',
    'log(`root ${rootKey}`);',
    'const x = `${share.value}`;',
    "const t = 'k=' + keyBytes;",
    "const t = value + '';",
    'const d = new TextDecoder().decode(plain);',
    'const j = JSON.stringify(share);',
  ];
  for (const s of samples) assert.ok(findStringConversions(s).length > 0, s);
  for (const s of ['const a = `spike:${share.id}:`;', 'const b = `${j > 0 ? "," : ""}"${k}":`;', '// key.toString()', 'toJSON(): string {']) {
    assert.deepEqual(findStringConversions(s), [], s);
  }
});

test('LINT: no src/crypto/*.ts module converts key material to a string', () => {
  const dir = join(REPO_ROOT, 'src', 'crypto');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  assert.ok(files.length >= 10, 'the crypto sources were found');
  const hits = files.flatMap((f) => findStringConversions(readFileSync(join(dir, f), 'utf8')).map((h) => `${f}:${h}`));
  assert.deepEqual(hits, []);
});
