/**
 * FI-13 over the real router, guards, policy engine and memory store: a caller holding costly
 * path patterns sends GETs and listings at once. Its pattern work is spread over turns of the
 * event loop (one decision bound per turn: policy/pacer.ts), and a listing that must make a
 * path's `list` and `read` decisions in different turns still shows exactly what the caller
 * may list or read, as one unpaced decision per path would.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { RE2JS } from 're2js';
import { stormPaths, stormPatterns } from '../../../test/helpers/redos-storm.js';
import { type RouteHarness, startRouteHarness } from '../../../test/helpers/route-harness.js';
import { SpiffeId } from '../../spiffe/index.js';
import { PATTERN_WORK_PER_TURN } from '../policy/pacer.js';
import { policyRoutes } from './policies.js';
import { secretRoutes } from './secrets.js';

const PILOT = 'spiffe://spike.ist/spike/pilot/role/superuser';
const STORM = 'spiffe://spike.ist/workload/storm';
const SG = '/v1/store/secrets?action=get';
const SL = '/v1/store/secrets?action=list';

/** A storm path made a valid secret path of the same length (no empty segment, no slash at either end). */
/** Child process: opens N connections to the port, then sends every request at once; prints the statuses. */
const BURST = `
const net = require('node:net');
const [port, peer, n] = [Number(process.argv[1]), process.argv[2], Number(process.argv[3])];
const socks = [];
let open = 0;
const statuses = [];
for (let i = 0; i < n; i++) {
  const s = net.connect(port, '127.0.0.1', () => { if (++open === n) fire(); });
  let got = '';
  s.on('data', (d) => { got += d.toString('latin1'); if (got.includes('\\r\\n\\r\\n') && !s.done) { s.done = true; statuses.push(got.slice(9, 12)); s.destroy(); if (statuses.length === n) console.log(JSON.stringify(statuses)); } });
  socks.push(s);
}
function fire() {
  const req = 'POST /v1/acl/policy?action=list HTTP/1.1\\r\\nHost: x\\r\\nX-Test-Peer: ' + peer + '\\r\\nContent-Type: application/json\\r\\nContent-Length: 2\\r\\n\\r\\n{}';
  setTimeout(() => { for (const s of socks) s.write(req); }, 100);
}
`;

const secretPath = (p: string): string => p.replace(/\/\//g, '/a').replace(/^\//, 'a').replace(/\/Z$/, 'aZ');

let h: RouteHarness;
const listed = stormPaths(12, 300).map((p, i) => `lst/${secretPath(p)}${i}`);
const readable = listed[7]!;

before(async () => {
  h = await startRouteHarness({ modules: [secretRoutes, policyRoutes], env: { SPIKE_NEXUS_LIST_POLICY_BUDGET: '10m' } });
  for (const path of listed) assert.equal((await h.post('/v1/store/secrets', { path, values: { v: 'x' } }, PILOT)).status, 200);
  const id = `^${STORM.replace(/\./g, '\\.')}$`;
  for (const [i, pathPattern] of stormPatterns(12).entries()) {
    const r = await h.post('/v1/acl/policy', { name: `storm-${i}`, spiffeidPattern: id, pathPattern, permissions: ['list'] }, PILOT);
    assert.equal(r.status, 200, r.body);
  }
  // `read` on one listed path, by a literal pattern: the listing's `read` decision allows it.
  assert.equal((await h.post('/v1/acl/policy', { name: 'one', spiffeidPattern: id, pathPattern: readable, permissions: ['read'] }, PILOT)).status, 200);
});
after(async () => {
  await h.close();
});

/** The most pattern work the engine did in one turn of the loop, read by an immediate that re-arms itself. */
function turnWatch(): { worst(): number; stop(): void } {
  const engine = h.ctx.engine;
  let worst = 0;
  let last = engine.patternWork;
  let live = true;
  const tick = (): void => {
    worst = Math.max(worst, engine.patternWork - last);
    last = engine.patternWork;
    if (live) setImmediate(tick);
  };
  setImmediate(tick);
  return { worst: () => worst, stop: () => { live = false; } };
}

test('FI-13 route level: costly GETs and listings at once never do more than one decision bound of pattern work per turn; listings show exactly what one unpaced decision per path shows', async () => {
  const engine = h.ctx.engine;
  const watch = turnWatch();
  const start = engine.patternWork;
  try {
    const gets = stormPaths(6, 500).map((p) => h.post(SG, { path: secretPath(p) }, STORM));
    const lists = Array.from({ length: 4 }, () => h.post(SL, { prefix: 'lst/' }, STORM));
    for (const r of await Promise.all(gets)) assert.equal(r.status, 401);
    const pages = await Promise.all(lists);
    watch.stop();
    // What the caller may list or read, decided unpaced (both decisions at once, per path).
    const peer = SpiffeId.parse(STORM);
    const visible = listed.filter((p) => h.ctx.authz.canSeeSecretPath(peer, p)).sort();
    assert.ok(visible.includes(readable) && visible.length < listed.length, `${visible.length} visible`);
    for (const r of pages) {
      assert.equal(r.status, 200, r.body);
      assert.deepEqual((r.json as { keys: string[] }).keys, visible);
    }
  } finally {
    watch.stop();
  }
  const total = engine.patternWork - start;
  assert.ok(total > 10 * PATTERN_WORK_PER_TURN, `the requests were costly (${total} units), so the bound below meant something`);
  assert.ok(watch.worst() <= PATTERN_WORK_PER_TURN, `worst turn ${watch.worst()} units > ${PATTERN_WORK_PER_TURN}`);
});

test('FI-13 route level: policy-route requests at once (a rule on a gate path, decided by the identity pre-check) do at most one decision bound of pattern work per turn', async () => {
  const GATE = 'spiffe://spike.ist/workload/gate-storm';
  const id = `^${GATE.replace(/\./g, '\\.')}$`;
  // Costly patterns with `list` that do not match the acl gate path, so every policy-list
  // request's pre-check runs them all (about one decision bound).
  const onGate = stormPatterns(400).filter((p) => !RE2JS.compile(p).matches('spike/system/acl')).slice(0, 240);
  for (const [i, pathPattern] of onGate.entries()) {
    const r = await h.post('/v1/acl/policy', { name: `gate-${i}`, spiffeidPattern: id, pathPattern, permissions: ['list'] }, PILOT);
    assert.equal(r.status, 200, r.body);
  }
  const engine = h.ctx.engine;
  const watch = turnWatch();
  const start = engine.patternWork;
  // Another process opens the connections, then writes every request in one go: their bytes
  // reach this process together, so their pre-checks would run in one turn unpaced.
  const child = spawn(process.execPath, ['-e', BURST, String(h.port), GATE, '30'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  await new Promise<void>((resolve) => child.on('exit', () => resolve()));
  watch.stop();
  const got = JSON.parse(out) as string[];
  assert.equal(got.length, 30);
  assert.ok(got.every((st) => st === '401' || st === '200'), got.join(','));
  const total = engine.patternWork - start;
  assert.ok(total > 5 * PATTERN_WORK_PER_TURN, `the requests were costly (${total} units)`);
  assert.ok(watch.worst() <= PATTERN_WORK_PER_TURN, `worst turn ${watch.worst()} units > ${PATTERN_WORK_PER_TURN}`);
});
