/**
 * Nexus's optional V8 setting (v8-flags.ts, `SPIKE_NEXUS_V8_YOUNG_GENERATION`): with `small`,
 * in a fresh process where it is applied first (as bin/spike-nexus.js does), a phase where
 * most young objects survive does not grow the young generation; with `default` (or unset)
 * the same phase does. Any other value is refused with one line and nothing applied.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { applyNexusV8Flags } from './v8-flags.js';

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

function newSpaceMiB(value: string | undefined): number {
  const script = `
    const { applyNexusV8Flags } = await import(${JSON.stringify(here('./v8-flags.js'))});
    const env = ${JSON.stringify(value === undefined ? {} : { SPIKE_NEXUS_V8_YOUNG_GENERATION: value })};
    if (applyNexusV8Flags(env) !== undefined || applyNexusV8Flags(env) !== undefined) throw new Error('refused');
    const v8 = await import('node:v8');
    const kept = [];
    // 40 MB of small objects, most of them kept: every scavenge sees a high survival rate.
    for (let i = 0; i < 400000; i++) { const o = { i, s: 'x'.repeat(16) + i }; if (i % 8 !== 0) kept.push(o); }
    const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    process.stdout.write(String(ns.space_size / 2 ** 20 + kept.length * 0));
  `;
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

test('issue 17: SPIKE_NEXUS_V8_YOUNG_GENERATION=small keeps the young generation at its initial size; default lets it grow', () => {
  const small = newSpaceMiB('small');
  assert.ok(small <= 2, `young generation ${small} MiB with small`);
  assert.ok(newSpaceMiB(undefined) > small, 'unset: V8 grows it');
  assert.ok(newSpaceMiB('default') > small, 'default: V8 grows it');
});

test('issue 17: an unknown SPIKE_NEXUS_V8_YOUNG_GENERATION value is refused with one line', () => {
  assert.equal(applyNexusV8Flags({ SPIKE_NEXUS_V8_YOUNG_GENERATION: 'tiny' }), 'SPIKE_NEXUS_V8_YOUNG_GENERATION must be "default" or "small"');
  assert.equal(applyNexusV8Flags({ SPIKE_NEXUS_V8_YOUNG_GENERATION: 'default' }), undefined);
  assert.equal(applyNexusV8Flags({}), undefined);
});
