/**
 * The Keeper's V8 settings (lean.ts) change nothing a Keeper does: under them a share is
 * split, checked against its commitments and recombined exactly as without them, in a fresh
 * process where the flags are set before anything else loads (as bin/spike-keeper.js does).
 * And the Keeper's import graph stays lean: no store, no re2js, no metrics library; and its young
 * generation does not grow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { staticImportGraph } from '../../test/helpers/import-graph.js';

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

test('issue 17: under the Keeper V8 flags shares still verify and recombine', () => {
  const script = `
    const { applyKeeperV8Flags } = await import(${JSON.stringify(here('./lean.js'))});
    applyKeeperV8Flags();
    applyKeeperV8Flags(); // idempotent
    const c = await import(${JSON.stringify(here('../crypto/index.js'))});
    const root = c.RootKey.generate();
    const { shares, commitments } = c.splitSecret(root, 2, 3);
    const ok = shares.every((s) => commitments.verifyShare(s));
    const tampered = { ...shares[0], value: Uint8Array.from(shares[0].value, (b, i) => (i === 31 ? b ^ 1 : b)) };
    const back = c.combineShares([shares[2], shares[0]], 2);
    process.stdout.write(JSON.stringify({ ok, tampered: commitments.verifyShare(tampered), same: back.equals(root) }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as Record<string, unknown>;
  assert.equal(out['ok'], true);
  assert.equal(out['tampered'], false);
  assert.equal(out['same'], true);
});

test('issue 17: the Keeper\'s static imports reach neither the store nor re2js (an idle Keeper loads what it uses)', () => {
  const { files, packages } = staticImportGraph(here('./main.js'));
  const root = path.resolve(here('..'));
  const store = files.filter((f) => path.relative(root, f).startsWith(`store${path.sep}`));
  assert.deepEqual(store, [], 'no store module is loaded by a Keeper');
  assert.equal(packages.has('re2js'), false, 're2js is loaded on first use only');
  assert.equal(packages.has('prom-client'), false, 'metrics load only with the operations listener');
  // The walk does see the Keeper's real imports.
  assert.ok(packages.has('node:tls') || packages.has('node:https'));
});

test('issue 17: under the Keeper V8 flags the young generation stays at its initial size', () => {
  const script = `
    const { applyKeeperV8Flags } = await import(${JSON.stringify(here('./lean.js'))});
    applyKeeperV8Flags();
    const v8 = await import('node:v8');
    const kept = [];
    // 40 MB of small objects, most of them kept: without the flag V8 grows the young generation.
    for (let i = 0; i < 400000; i++) { const o = { i, s: 'x'.repeat(16) + i }; if (i % 8 !== 0) kept.push(o); }
    const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    process.stdout.write(String(ns.space_size / 2 ** 20 + kept.length * 0));
  `;
  const mib = Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
  assert.ok(mib <= 2, `young generation ${mib} MiB`);
});
