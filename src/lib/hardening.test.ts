import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  disableCoreDumps, hardenProcess, HardeningError, isShardCommand, parseProcLimitsCore, parseUlimitOutput,
  type CoreLimit, type HardeningDeps,
} from './hardening.js';
import { raiseCoreWrapper, raisedCoreLimit } from '../../test/helpers/core-limit.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max core file size        %S                   %H                   bytes
Max resident set          unlimited            unlimited            bytes
`;
const limits = (s: string, h: string): string => LIMITS.replace('%S', s).replace('%H', h);

test('ENV-08: /proc/<pid>/limits and ulimit output are parsed strictly', () => {
  assert.deepEqual(parseProcLimitsCore(limits('0', 'unlimited')), { soft: 0n, hard: null });
  assert.deepEqual(parseProcLimitsCore(limits('0', '0')), { soft: 0n, hard: 0n });
  assert.deepEqual(parseProcLimitsCore(limits('1048576', '18446744073709551615')), { soft: 1048576n, hard: 18446744073709551615n });
  assert.equal(parseProcLimitsCore(limits('-1', '0')), undefined);
  assert.equal(parseProcLimitsCore('Max cpu time unlimited unlimited seconds\n'), undefined);
  assert.deepEqual(parseUlimitOutput('0\nunlimited\n'), { soft: 0n, hard: null });
  assert.deepEqual(parseUlimitOutput('0\n0\n'), { soft: 0n, hard: 0n });
  assert.equal(parseUlimitOutput('garbage'), undefined);
});

function fake(seq: Array<CoreLimit | undefined>, prlimitRuns = true): HardeningDeps & { calls: number } {
  const d = {
    calls: 0,
    readLimit: () => seq.shift(),
    runPrlimit: () => {
      d.calls++;
      return prlimitRuns;
    },
  };
  return d;
}
const Z: CoreLimit = { soft: 0n, hard: 0n };
const OPEN: CoreLimit = { soft: 0n, hard: null };

test('ENV-08: an already-zero limit costs no child process; otherwise prlimit runs and only the re-read counts', () => {
  let d = fake([Z]);
  assert.deepEqual(disableCoreDumps(d, 1), { ok: true, via: 'already' });
  assert.equal(d.calls, 0);
  d = fake([OPEN, Z]);
  assert.deepEqual(disableCoreDumps(d, 1), { ok: true, via: 'prlimit' });
  assert.equal(d.calls, 1);
  assert.deepEqual(disableCoreDumps(fake([OPEN, OPEN]), 1), { ok: false }, 'prlimit ran but the limit did not change');
  assert.deepEqual(disableCoreDumps(fake([OPEN, Z], false), 1), { ok: false }, 'no prlimit binary');
  assert.deepEqual(disableCoreDumps(fake([undefined, undefined]), 1), { ok: false }, 'limit unreadable');
  const throwing: HardeningDeps = { readLimit: () => { throw new Error('x'); }, runPrlimit: () => true };
  assert.deepEqual(disableCoreDumps(throwing, 1), { ok: false });
});

test('ENV-08: required mode refuses to start unless SPIKE_ALLOW_CORE_DUMPS=true; best-effort goes on', () => {
  const r = hardenProcess('required', {}, fake([OPEN, OPEN]));
  assert.equal(r.proceed, false);
  assert.ok(!r.proceed && r.error instanceof HardeningError && r.error.code === 'core_dumps_not_disabled');
  assert.deepEqual(hardenProcess('required', { SPIKE_ALLOW_CORE_DUMPS: 'true' }, fake([OPEN, OPEN])), { proceed: true, disabled: false, optedOut: true });
  assert.deepEqual(hardenProcess('best-effort', {}, fake([OPEN, OPEN])), { proceed: true, disabled: false, optedOut: false });
  const bad = hardenProcess('required', { SPIKE_ALLOW_CORE_DUMPS: 'maybe' }, fake([Z]));
  assert.equal(bad.proceed, false, 'an unreadable opt-out value is a start-up error');
  assert.deepEqual(hardenProcess('required', { SPIKE_ALLOW_CORE_DUMPS: 'false' }, fake([OPEN, Z])), { proceed: true, disabled: true, via: 'prlimit' });
});

test('ENV-08: the shard-handling spike commands are hardened wherever their words stand; everyday commands are not', () => {
  for (const a of [['operator', 'recover'], ['operator', 'restore'], ['operator', 'verify-shard', '--json'], ['--socket', 'x', 'operator', 'recover'],
    ['--socket=x', 'operator', 'restore'], ['--', 'operator', 'verify-shard', '-'], ['--unknown', 'operator', '--', 'recover'],
    ['audit', 'verify', '--shard', 's1', '--shard', 's2', 'audit.log'], ['audit', 'verify', '--shard=s1', 'audit.log']]) {
    assert.equal(isShardCommand(a), true, a.join(' '));
  }
  for (const a of [[], ['secret', 'get', 'operator'], ['operator'], ['operator', 'status'], ['--socket', 'operator', 'secret', 'list'], ['secret', 'list'], ['cipher', 'encrypt'], ['audit', 'verify', 'audit.log']]) {
    assert.equal(isShardCommand(a), false, a.join(' '));
  }
});

test('ENV-08 (real process): started with an unlimited core limit, a child ends with 0 soft and hard', { skip: !fs.existsSync('/proc/self/limits') || !fs.existsSync('/usr/bin/prlimit') }, () => {
  const mod = fileURLToPath(new URL('./hardening.js', import.meta.url));
  const script = `const m = await import(${JSON.stringify(mod)}); const before = m.systemDeps.readLimit();
    const r = m.disableCoreDumps(); const after = m.systemDeps.readLimit();
    console.log(JSON.stringify({ r, before: String(before.hard), after: [String(after.soft), String(after.hard)] }));`;
  // Soft up to whatever the hard limit allows: a raised soft limit proves the lowering.
  const [prlimit, ...raise] = raiseCoreWrapper();
  const out = execFileSync(prlimit!, [...raise, process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
  const j = JSON.parse(out) as { r: { ok: boolean; via: string }; before: string; after: string[] };
  assert.deepEqual(j.after, ['0', '0']);
  assert.equal(j.r.ok, true);
  if (raisedCoreLimit() !== '0') assert.notEqual(j.before, '0', 'the child started with a raised hard limit');
  assert.equal(j.r.via, j.before === '0' ? 'already' : 'prlimit');
});
