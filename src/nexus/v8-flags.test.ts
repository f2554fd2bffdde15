/**
 * Nexus's V8 setting (v8-flags.ts): in a fresh process where it is set first (as
 * bin/spike-nexus.js does), a phase where most young objects survive does not grow the young
 * generation; without it, the same phase does (so the check sees the difference).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

function newSpaceMiB(apply: boolean): number {
  const script = `
    const { applyNexusV8Flags } = await import(${JSON.stringify(here('./v8-flags.js'))});
    if (${apply}) { applyNexusV8Flags(); applyNexusV8Flags(); }
    const v8 = await import('node:v8');
    const kept = [];
    // 40 MB of small objects, most of them kept: every scavenge sees a high survival rate.
    for (let i = 0; i < 400000; i++) { const o = { i, s: 'x'.repeat(16) + i }; if (i % 8 !== 0) kept.push(o); }
    const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    process.stdout.write(String(ns.space_size / 2 ** 20 + kept.length * 0));
  `;
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

test('issue 17: under the Nexus V8 flag the young generation stays at its initial size', () => {
  const without = newSpaceMiB(false);
  const withFlag = newSpaceMiB(true);
  assert.ok(withFlag <= 2, `young generation ${withFlag} MiB with the flag`);
  assert.ok(without > withFlag, `the phase grows it without the flag (${without} MiB)`);
});
