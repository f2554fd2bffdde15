/**
 * Tests for SPIKE's built-in identities and trust-root loading (`SPIKE_TRUST_ROOT_*`;
 * TLS-16, CFG-05 look-alikes; gaps A9).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpiffeId } from '../spiffe/id.js';
import {
  TrustRootConfigError,
  isBootstrap,
  isKeeper,
  isLiteWorkload,
  isNexus,
  isPilotOperator,
  isPilotRecover,
  isPilotRestore,
  loadTrustRoots,
  recognisers,
  spikeIds,
} from './roles.js';

const id = (s: string): SpiffeId => SpiffeId.parse(s);

test('trust roots: unset or empty variables default to spike.ist; lists are trimmed', () => {
  const r = loadTrustRoots({});
  assert.deepEqual(r.pilot.map((t) => t.name), ['spike.ist']);
  const r2 = loadTrustRoots({ SPIKE_TRUST_ROOT_PILOT: ' a.org , b.org,a.org', SPIKE_TRUST_ROOT_NEXUS: '', SPIKE_TRUST_ROOT: 'ignored.org' });
  assert.deepEqual(r2.pilot.map((t) => t.name), ['a.org', 'b.org']);
  assert.deepEqual(r2.nexus.map((t) => t.name), ['spike.ist']);
  assert.deepEqual(r2.keeper.map((t) => t.name), ['spike.ist']);
});

test('A9: an empty or invalid trust-root entry is a start-up config error that names the variable only', () => {
  for (const v of ['a.org,', ',a.org', 'a.org,,b.org', 'A.ORG', 'spiffe://a.org/x', 'a b']) {
    assert.throws(
      () => loadTrustRoots({ SPIKE_TRUST_ROOT_LITE_WORKLOAD: v }),
      (e: unknown) => e instanceof TrustRootConfigError && e.code === 'config_invalid_trust_root' && e.message.startsWith('SPIKE_TRUST_ROOT_LITE_WORKLOAD') && !e.message.includes(v),
      v,
    );
  }
});

test('role IDs: exact or prefix + "/" — look-alikes are not roles', () => {
  const roots = loadTrustRoots({ SPIKE_TRUST_ROOT_PILOT: 'spike.ist,corp.example' });
  const yes: Array<[string, (r: typeof roots, i: SpiffeId) => boolean]> = [
    ['spiffe://spike.ist/spike/nexus', isNexus],
    ['spiffe://spike.ist/spike/nexus/instance-1', isNexus],
    ['spiffe://spike.ist/spike/keeper/3', isKeeper],
    ['spiffe://spike.ist/spike/bootstrap', isBootstrap],
    ['spiffe://spike.ist/spike/pilot/role/superuser', isPilotOperator],
    ['spiffe://corp.example/spike/pilot/role/superuser/alice', isPilotOperator],
    ['spiffe://spike.ist/spike/pilot/role/recover', isPilotRecover],
    ['spiffe://spike.ist/spike/pilot/role/restore/x', isPilotRestore],
    ['spiffe://spike.ist/spike/workload/role/lite/app', isLiteWorkload],
  ];
  for (const [s, f] of yes) assert.equal(f(roots, id(s)), true, s);
  const no: Array<[string, (r: typeof roots, i: SpiffeId) => boolean]> = [
    ['spiffe://spike.ist/spike/nexusX', isNexus],
    ['spiffe://spike.ist/spike/nexus-1', isNexus],
    ['spiffe://other.org/spike/nexus', isNexus],
    ['spiffe://spike.ist/spike/pilot/role/superuser-x', isPilotOperator],
    ['spiffe://spike.ist/spike/pilot/role/superuserx/y', isPilotOperator],
    ['spiffe://spike.ist/spike/pilot/role', isPilotOperator],
    ['spiffe://spike.ist/spike/pilot/role/Superuser', isPilotOperator],
    ['spiffe://other.org/spike/pilot/role/superuser', isPilotOperator],
    ['spiffe://spike.ist/spike/pilot/role/recover', isPilotOperator],
    ['spiffe://spike.ist/spike/pilot/role/restore', isPilotRecover],
    ['spiffe://spike.ist/spike/pilot/role/superuser', isPilotRecover],
    ['spiffe://spike.ist/x/spike/bootstrap', isBootstrap],
    ['spiffe://spike.ist/spike/workload/role/literal', isLiteWorkload],
    ['spiffe://spike.ist/spike/keeper', isNexus],
  ];
  for (const [s, f] of no) assert.equal(f(roots, id(s)), false, s);
});

test('spikeIds builds the base IDs; recognisers bind the roots', () => {
  const ids = spikeIds('example.org');
  assert.equal(ids.pilotSuperuser.toString(), 'spiffe://example.org/spike/pilot/role/superuser');
  assert.equal(ids.liteWorkload.toString(), 'spiffe://example.org/spike/workload/role/lite');
  assert.equal(ids.nexus.toString(), 'spiffe://example.org/spike/nexus');
  const r = recognisers(loadTrustRoots({ SPIKE_TRUST_ROOT_NEXUS: 'example.org' }));
  assert.equal(r.isNexus(ids.nexus), true);
  assert.equal(r.isNexus(spikeIds('spike.ist').nexus), false);
  assert.equal(r.isPilotOperator(ids.pilotSuperuser), false, 'pilot root is still spike.ist');
});
