/**
 * Issue 15 (start-up time): a `spike` call evaluates the curve code (@noble/curves, and with it
 * a Web Crypto probe) only when its command does curve arithmetic. The CLI's entry and each
 * command group's module are walked through their static imports (the groups are loaded on
 * demand, `import()` in main.ts; so is the offline shard check, `verify-shard`): only `audit`,
 * which recombines shares into the root key, reaches it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { staticImportGraph } from '../../test/helpers/import-graph.js';

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
const loadsCurveCode = (...modules: string[]): boolean =>
  [...staticImportGraph(...modules.map(here)).packages].some((p) => p.startsWith('@noble/curves'));

test('issue 15: spike and its secret, policy, cipher, operator and env groups load no curve code', () => {
  for (const group of ['./secret.js', './policy.js', './cipher.js', './operator.js', './envcmd.js']) {
    assert.equal(loadsCurveCode('./main.js', group), false, group);
  }
});

test('issue 15: the audit group, which recombines shares, does (the walk sees the curve code)', () => {
  assert.equal(loadsCurveCode('./main.js', './audit.js'), true);
});
