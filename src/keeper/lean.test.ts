/**
 * The Keeper's V8 settings (lean.ts) change nothing a Keeper does: under them a share is
 * split, checked against its commitments and recombined exactly as without them, in a fresh
 * process where the flags are set before anything else loads (as bin/spike-keeper.js does).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

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
