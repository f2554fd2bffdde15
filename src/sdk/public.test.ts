/**
 * The SDK's public surface (public.ts, what both packages export) is exactly what docs/sdk.md
 * lists under "What the package exports": a new export is a promise to users and must be
 * documented; a helper of the `spike` CLI must not leak into it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import * as sdk from './public.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The backticked names in the first column of docs/sdk.md's export table. */
function documentedExports(): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'docs', 'sdk.md'), 'utf8');
  const start = text.indexOf('## What the package exports');
  assert.ok(start >= 0, 'docs/sdk.md has no export section');
  const section = text.slice(start, text.indexOf('\n## ', start + 1));
  const names: string[] = [];
  for (const line of section.split('\n')) {
    const first = /^\| ([^|]+) \|/.exec(line)?.[1];
    if (first === undefined || first === 'Export' || /^-+$/.test(first)) continue;
    for (const m of first.matchAll(/`(\w+)`/g)) names.push(m[1]!);
  }
  return names.sort();
}

test('public surface: the runtime exports of @spike-ts/sdk are exactly the documented ones', () => {
  const documented = documentedExports();
  assert.ok(documented.includes('NexusClient'), 'the table was read');
  assert.deepEqual(Object.keys(sdk).sort(), documented);
});

test('public surface: no CLI helper or wire decoder is exported', () => {
  for (const name of ['clientRoles', 'failureText', 'decodeGetSecret', 'parseAnswer', 'ROUTES', 'isAllZero', 'codeForStatus']) {
    assert.equal(name in sdk, false, name);
  }
});
