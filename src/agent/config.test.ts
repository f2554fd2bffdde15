/** spike-agent configuration: durations, file parsing, flag merging and validation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentConfigError, parseDuration, parseIdentityFlag, readConfigFile, resolveConfig } from './config.js';
import { parseAgentArgs } from './main.js';

test('Go-style durations parse to milliseconds', () => {
  const cases: [string, number | undefined][] = [
    ['500ms', 500], ['30s', 30_000], ['5m', 300_000], ['1h', 3_600_000], ['1h30m', 5_400_000],
    ['1.5s', 1_500], ['2s500ms', 2_500], ['0', 0], ['1000us', 1], ['', undefined], ['1', undefined],
    ['-1s', undefined], ['1d', undefined], ['s', undefined], ['1..5s', undefined], ['1 h', undefined],
    ['.s', undefined], ['1h ', undefined],
  ];
  for (const [s, want] of cases) assert.equal(parseDuration(s), want, s);
});

test('defaults: spike.ist, 1h TTL, folders under the working directory', () => {
  const cfg = resolveConfig({ identities: [{ name: 'nexus', spiffeId: 'spiffe://spike.ist/spike/nexus' }] }, {}, '/w');
  assert.equal(cfg.trustDomain.name, 'spike.ist');
  assert.equal(cfg.svidTtlMs, 3_600_000);
  assert.equal(cfg.stateDir, '/w/.spike/agent');
  assert.equal(cfg.socketDir, '/w/.spike/sockets');
  assert.equal(cfg.identities[0]!.spiffeId.toString(), 'spiffe://spike.ist/spike/nexus');
});

test('YAML file with the documented shape is read; flags override and add identities', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-cfg-'));
  try {
    const file = path.join(dir, 'agent.yaml');
    fs.writeFileSync(file, [
      'trustDomain: example.org',
      'stateDir: /s',
      'socketDir: /k',
      'svidTtl: 5m',
      'identities:',
      '  - name: nexus',
      '    spiffeId: spiffe://example.org/spike/nexus',
      '  - name: pilot',
      '    spiffeId: spiffe://example.org/spike/pilot/role/superuser',
      '',
    ].join('\n'));
    const cfg = parseAgentArgs(['--config', file, '--svid-ttl', '30s', '--identity', 'keeper-1=spiffe://example.org/spike/keeper/1', '--identity', 'pilot=spiffe://example.org/other'], '/w');
    assert.equal(cfg.trustDomain.name, 'example.org');
    assert.equal(cfg.stateDir, '/s');
    assert.equal(cfg.socketDir, '/k');
    assert.equal(cfg.svidTtlMs, 30_000);
    assert.deepEqual(cfg.identities.map((i) => [i.name, i.spiffeId.toString()]), [
      ['nexus', 'spiffe://example.org/spike/nexus'],
      ['pilot', 'spiffe://example.org/other'],
      ['keeper-1', 'spiffe://example.org/spike/keeper/1'],
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('JSON config files are accepted too', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-cfg-'));
  try {
    const file = path.join(dir, 'agent.json');
    fs.writeFileSync(file, JSON.stringify({ svidTtl: '2s', identities: [{ name: 'a', spiffeId: 'spiffe://spike.ist/a' }] }));
    const cfg = resolveConfig(readConfigFile(file), {}, dir);
    assert.equal(cfg.svidTtlMs, 2_000);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('invalid configurations are refused with AgentConfigError', () => {
  const ok = { name: 'nexus', spiffeId: 'spiffe://spike.ist/spike/nexus' };
  const bad: [string, Parameters<typeof resolveConfig>[0]][] = [
    ['no identities', {}],
    ['foreign trust domain', { identities: [{ name: 'x', spiffeId: 'spiffe://evil.org/x' }] }],
    ['trust domain ID as workload ID', { identities: [{ name: 'x', spiffeId: 'spiffe://spike.ist' }] }],
    ['malformed ID', { identities: [{ name: 'x', spiffeId: 'spiffe://spike.ist/../x' }] }],
    ['name with slash', { identities: [{ name: '../x', spiffeId: ok.spiffeId }] }],
    ['dot name', { identities: [{ name: '.hidden', spiffeId: ok.spiffeId }] }],
    ['empty name', { identities: [{ name: '', spiffeId: ok.spiffeId }] }],
    ['duplicate names', { identities: [ok, ok] }],
    ['TTL too short', { svidTtl: '500ms', identities: [ok] }],
    ['TTL not a duration', { svidTtl: 'soon', identities: [ok] }],
    ['TTL too long', { svidTtl: '10000h', identities: [ok] }],
    ['bad trust domain', { trustDomain: 'Spike.IST', identities: [ok] }],
    ['socket path too long', { socketDir: '/' + 'x'.repeat(120), identities: [ok] }],
  ];
  for (const [why, input] of bad) assert.throws(() => resolveConfig(input, {}, '/w'), AgentConfigError, why);
});

test('malformed config files and flags are refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-cfg-'));
  try {
    const cases = ['[1, 2]', 'trustDomain: [a]', 'unknownKey: 1', 'identities: {a: b}', 'identities:\n  - name: a\n', 'identities:\n  - name: a\n    spiffeId: spiffe://spike.ist/a\n    extra: 1\n', 'a: [unclosed'];
    for (const [i, text] of cases.entries()) {
      const f = path.join(dir, `c${i}.yaml`);
      fs.writeFileSync(f, text);
      assert.throws(() => readConfigFile(f), AgentConfigError, text);
    }
    assert.throws(() => readConfigFile(path.join(dir, 'missing.yaml')), AgentConfigError);
    assert.throws(() => parseIdentityFlag('no-equals-sign'), AgentConfigError);
    assert.throws(() => parseIdentityFlag('=spiffe://spike.ist/a'), AgentConfigError);
    assert.deepEqual(parseIdentityFlag('a=spiffe://spike.ist/a=b'), { name: 'a', spiffeId: 'spiffe://spike.ist/a=b' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
