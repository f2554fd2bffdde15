/**
 * deploy/systemd/ is loadable by systemd and keeps its hardening:
 *
 * - `systemd-analyze verify` accepts every unit (the Keeper template as instance
 *   `spike-keeper@1.service`) with no warning at all: an unknown or misspelt directive is
 *   only a warning with exit code 0, so any stderr output fails the test;
 * - `systemd-analyze security --offline=yes` rates each unit's exposure at most 2.0;
 * - each unit carries the hardening directives the deployment guide promises, and only Nexus
 *   has a writable path (its data folder);
 * - every variable in spike.env.example is documented in docs/configuration.md.
 *
 * The units run `/usr/bin/node /opt/spike/bin/…` (the documented install layout). verify checks
 * only that the executable (`/usr/bin/node`) exists; where node lives elsewhere the test
 * verifies a temporary copy with `/usr/bin/node` replaced by this node's path. Without
 * systemd-analyze the test installs Debian's `systemd` package when it runs as root, and is
 * skipped (saying why) otherwise.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ALLOCATOR_ENV } from '../src/lib/index.js';
import { REPO_ROOT } from './helpers/bin.js';
import { tempDir } from './helpers/temp.js';

const UNITS_DIR = path.join(REPO_ROOT, 'deploy', 'systemd');
const UNITS = ['spike-nexus.service', 'spike-keeper@.service', 'spike-bootstrap.service'];
const instanceName = (unit: string): string => unit.replace('@.service', '@1.service');

function findSystemdAnalyze(): string | undefined {
  for (const p of ['/usr/bin/systemd-analyze', '/bin/systemd-analyze']) if (fs.existsSync(p)) return p;
  return undefined;
}

/** systemd-analyze, installed from Debian when missing and we are root; else a skip reason. */
function systemdAnalyze(): { bin?: string; skip?: string } {
  const found = findSystemdAnalyze();
  if (found) return { bin: found };
  if (process.getuid?.() !== 0) return { skip: 'systemd-analyze is not installed and the test is not root (cannot apt-get install systemd)' };
  execFileSync('sh', ['-c', 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd'], { stdio: 'ignore', timeout: 600_000 });
  const after = findSystemdAnalyze();
  return after ? { bin: after } : { skip: 'apt-get install systemd did not provide systemd-analyze' };
}

/** Copies the units to a temp folder, pointing ExecStart at this node when /usr/bin/node is absent. */
function stageUnits(): string {
  const dir = tempDir('spike-systemd-');
  const rewrite = !fs.existsSync('/usr/bin/node');
  for (const u of UNITS) {
    let text = fs.readFileSync(path.join(UNITS_DIR, u), 'utf8');
    if (rewrite) text = text.replaceAll('/usr/bin/node', process.execPath);
    fs.writeFileSync(path.join(dir, u), text);
  }
  return dir;
}

/** `[Service]` directives of a unit file: name → every value (in order). */
function serviceDirectives(unit: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of fs.readFileSync(path.join(UNITS_DIR, unit), 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      continue;
    }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const tool = systemdAnalyze();

test('systemd units: systemd-analyze verify accepts every unit without a single warning', { skip: tool.skip ?? false }, () => {
  const dir = stageUnits();
  for (const u of UNITS) {
    const r = spawnSync(tool.bin!, ['verify', path.join(dir, instanceName(u))], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `${u}: exit ${r.status}\n${r.stderr}`);
    assert.equal(r.stderr.trim(), '', `${u}: systemd-analyze verify warned:\n${r.stderr}`);
  }
});

test('systemd units: verify does report a misspelt directive (the check above can fail)', { skip: tool.skip ?? false }, () => {
  const dir = stageUnits();
  const bad = path.join(dir, 'spike-nexus.service');
  fs.writeFileSync(bad, fs.readFileSync(bad, 'utf8').replace('NoNewPrivileges=yes', 'NoNewPrivilegs=yes'));
  const r = spawnSync(tool.bin!, ['verify', bad], { encoding: 'utf8', timeout: 60_000 });
  assert.match(r.stderr, /Unknown key 'NoNewPrivilegs'/);
});

test('systemd units: systemd-analyze security rates every unit at exposure 2.0 or lower', { skip: tool.skip ?? false }, () => {
  const dir = stageUnits();
  for (const u of UNITS) {
    const r = spawnSync(tool.bin!, ['security', '--offline=yes', '--threshold=20', '--no-pager', path.join(dir, instanceName(u))], { encoding: 'utf8', timeout: 60_000 });
    const m = /Overall exposure level for \S+: ([0-9.]+)/.exec(r.stdout + r.stderr);
    assert.ok(m, `${u}: no exposure level in output:\n${r.stdout}${r.stderr}`);
    assert.ok(Number(m[1]) <= 2.0, `${u}: exposure ${m[1]} > 2.0`);
    assert.equal(r.status, 0, `${u}: security exit ${r.status}`);
  }
});

test('systemd units: every unit has the promised hardening, and only Nexus may write (its data folder)', () => {
  const required: Record<string, string> = {
    LimitCORE: '0',
    MemorySwapMax: '0',
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    PrivateDevices: 'yes',
    CapabilityBoundingSet: '',
    RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6',
    UMask: '0077',
  };
  const allocatorLines = Object.entries(ALLOCATOR_ENV).map(([k, v]) => `${k}=${v}`);
  for (const u of UNITS) {
    const d = serviceDirectives(u);
    for (const [k, v] of Object.entries(required)) assert.deepEqual(d.get(k), [v], `${u}: ${k}=${v}`);
    const user = d.get('User')?.[0] ?? '';
    assert.ok(user !== '' && user !== 'root', `${u}: a dedicated User=`);
    assert.match(d.get('ExecStart')?.[0] ?? '', /^\/usr\/bin\/node \/opt\/spike\/bin\/spike-(nexus|keeper|bootstrap)\.js( -init)?$/);
    if (u === 'spike-nexus.service') {
      assert.deepEqual(d.get('ReadWritePaths'), ['/var/lib/spike-nexus']);
      assert.deepEqual(d.get('StateDirectory'), ['spike-nexus']);
      assert.deepEqual(d.get('Environment'), ['SPIKE_NEXUS_DATA_DIR=/var/lib/spike-nexus', ...allocatorLines]);
      assert.deepEqual(d.get('Restart'), ['on-failure']);
    } else {
      assert.equal(d.get('ReadWritePaths'), undefined, `${u}: writes nothing`);
      assert.equal(d.get('StateDirectory'), undefined, `${u}: writes nothing`);
    }
    if (u === 'spike-keeper@.service') assert.deepEqual(d.get('Restart'), ['on-failure']);
    // issue 17: the servers return memory to the system after bursts of handshakes
    if (u !== 'spike-bootstrap.service') for (const l of allocatorLines) assert.ok(d.get('Environment')?.includes(l), `${u}: ${l}`);
    if (u === 'spike-bootstrap.service') assert.deepEqual(d.get('Type'), ['oneshot']);
  }
});

test('systemd env template: every variable in spike.env.example is documented in docs/configuration.md', () => {
  const env = fs.readFileSync(path.join(UNITS_DIR, 'spike.env.example'), 'utf8');
  const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
  const names = new Set([...env.matchAll(/^#? ?((?:SPIKE|SPIFFE)_[A-Z0-9_]+)=/gm)].map((m) => m[1]!));
  assert.ok(names.size >= 40, `only ${names.size} variables in the template`);
  for (const n of names) {
    // configuration.md abbreviates two families: `SPIKE_TRUST_ROOT_NEXUS`, `_KEEPER`, … and `…_RETRY_INITIAL_INTERVAL` / `_MAX_INTERVAL`.
    const family = ['SPIKE_TRUST_ROOT_', 'SPIKE_BOOTSTRAP_KEEPER_RETRY_'].find((f) => n.startsWith(f));
    const short = family !== undefined ? `\`_${n.slice(family.length)}\`` : undefined;
    assert.ok(doc.includes(n) || (short !== undefined && doc.includes(short)), `${n} is not in docs/configuration.md`);
  }
});
