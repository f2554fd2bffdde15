import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseDuration, listenAddress, httpsUrlList, int, bool } from '../lib/env.js';
import { MAX_CIPHER_STREAM_BYTES, loadNexusConfig, loadBootstrapConfig, loadKeeperConfig, resolveDataDir } from './components.js';

test('parseDuration accepts Go durations', () => {
  const cases: [string, number | undefined][] = [
    ['0', 0], ['500ms', 500], ['30s', 30_000], ['5m', 300_000], ['1h30m', 5_400_000], ['1.5s', 1500],
    ['250us', 0.25], ['', undefined], ['5', undefined], ['5x', undefined], ['s', undefined], ['1h 30m', undefined],
  ];
  for (const [s, want] of cases) assert.equal(parseDuration(s), want, s);
});

test('CFG-01: duration settings are whole milliseconds (a fraction rounds up) and at most the longest timer Node runs', () => {
  const env = (v: string) => ({ SPIKE_HTTP_SERVER_HANDSHAKE_TIMEOUT: v });
  assert.equal(loadKeeperConfig(env('1.5s')).serverLimits.handshakeTimeoutMs, 1500);
  assert.equal(loadKeeperConfig(env('100.5ms')).serverLimits.handshakeTimeoutMs, 101);
  assert.equal(loadKeeperConfig(env('596h')).serverLimits.handshakeTimeoutMs, 596 * 3_600_000);
  for (const v of ['597h', '1000000h']) {
    assert.throws(() => loadKeeperConfig(env(v)), /SPIKE_HTTP_SERVER_HANDSHAKE_TIMEOUT: must be at most 596h/, v);
  }
});

test('listen addresses', () => {
  assert.deepEqual(listenAddress({}, 'X', ':8553'), { host: undefined, port: 8553 });
  assert.deepEqual(listenAddress({ X: '127.0.0.1:0' }, 'X', ':1'), { host: '127.0.0.1', port: 0 });
  assert.deepEqual(listenAddress({ X: '[::1]:9' }, 'X', ':1'), { host: '::1', port: 9 });
  assert.throws(() => listenAddress({ X: '8553' }, 'X', ':1'), ConfigError);
  assert.throws(() => listenAddress({ X: ':99999' }, 'X', ':1'), ConfigError);
});

test('CFG-01: malformed numbers and booleans are refused, not silently defaulted', () => {
  assert.throws(() => int({ N: 'three' }, 'N', 3), /N: must be a decimal integer/);
  assert.throws(() => int({ N: '0' }, 'N', 3), ConfigError);
  assert.equal(int({ N: ' 7 ' }, 'N', 3), 7);
  assert.equal(int({}, 'N', 3), 3);
  assert.throws(() => bool({ B: 'yes' }, 'B', false), ConfigError);
  assert.equal(bool({ B: 'T' }, 'B', false), true);
});

test('CFG-01: Keeper peers must be distinct https URLs, one per share', () => {
  const base = { SPIKE_NEXUS_SHAMIR_SHARES: '3', SPIKE_NEXUS_SHAMIR_THRESHOLD: '2' };
  const ok = loadNexusConfig({ ...base, SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1, https://b:2/,https://c:3' });
  assert.deepEqual(ok.keeperPeers, ['https://a:1', 'https://b:2', 'https://c:3']);
  const bad: Record<string, string>[] = [
    { SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,https://b:2' },
    { SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,https://a:1,https://c:3' },
    { SPIKE_NEXUS_KEEPER_PEERS: 'http://a:1,https://b:2,https://c:3' },
    { SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,,https://c:3' },
    { SPIKE_NEXUS_KEEPER_PEERS: 'https://u:p@a:1,https://b:2,https://c:3' },
    { SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,https://b:2,https://c:3', SPIKE_NEXUS_SHAMIR_THRESHOLD: '4' },
    { SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,https://b:2,https://c:3', SPIKE_NEXUS_BACKEND_STORE: 'redis' },
    {},
  ];
  for (const extra of bad) assert.throws(() => loadNexusConfig({ ...base, ...extra }), ConfigError, JSON.stringify(extra));
});

test('memory backend needs no Keepers; error messages never echo values', () => {
  const c = loadNexusConfig({ SPIKE_NEXUS_BACKEND_STORE: 'Memory' });
  assert.equal(c.backend, 'memory');
  try {
    httpsUrlList({ P: 'https://secret-canary-123' + ',,' }, 'P', true);
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.ok(!e.message.includes('secret-canary'));
  }
});

test('data directory rules', () => {
  assert.equal(resolveDataDir({ SPIKE_NEXUS_DATA_DIR: '/var/lib/spike' }), '/var/lib/spike/data');
  assert.throws(() => resolveDataDir({ SPIKE_NEXUS_DATA_DIR: '/etc/spike' }), ConfigError);
  assert.throws(() => resolveDataDir({ SPIKE_NEXUS_DATA_DIR: '/' }), ConfigError);
});

test('bootstrap and keeper defaults', () => {
  const b = loadBootstrapConfig({ SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,https://b:2,https://c:3' });
  assert.equal(b.nexusUrl, 'https://localhost:8553');
  assert.equal(b.keeperMaxRetries, 5);
  assert.equal(b.sourceTimeoutMs, 30_000);
  assert.equal(b.force, false);
  const k = loadKeeperConfig({});
  assert.equal(k.listen.port, 8443);
  assert.equal(k.sourceTimeoutMs, undefined);
  // A Keeper keeps a smaller handshake budget than Nexus (no client pools call it); both can be set.
  assert.equal(k.serverLimits.maxHandshakes, 256);
  assert.equal(loadKeeperConfig({ SPIKE_HTTP_SERVER_MAX_HANDSHAKES: '64' }).serverLimits.maxHandshakes, 64);
  const n = loadNexusConfig({ SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,https://b:2,https://c:3' });
  assert.equal(n.serverLimits.maxHandshakes, 1024);
});

test('cipher settings: stream cap 64 MiB (default and maximum), memory budget 256 MiB (at least 1 MiB)', () => {
  const MiB = 1024 * 1024;
  const mem = { SPIKE_NEXUS_BACKEND_STORE: 'memory' };
  const d = loadNexusConfig(mem);
  assert.equal(MAX_CIPHER_STREAM_BYTES, 64 * MiB);
  assert.equal(d.maxStreamBytes, 64 * MiB);
  assert.equal(d.cipherMemoryBudgetBytes, 256 * MiB);
  assert.equal(loadNexusConfig({ ...mem, SPIKE_NEXUS_CRYPTO_MAX_STREAM_SIZE: '1048576' }).maxStreamBytes, MiB);
  assert.equal(loadNexusConfig({ ...mem, SPIKE_NEXUS_CIPHER_MEMORY_BUDGET_BYTES: String(8 * MiB) }).cipherMemoryBudgetBytes, 8 * MiB);
  for (const bad of [
    { SPIKE_NEXUS_CRYPTO_MAX_STREAM_SIZE: String(64 * MiB + 1) },
    { SPIKE_NEXUS_CRYPTO_MAX_STREAM_SIZE: String(256 * MiB) },
    { SPIKE_NEXUS_CIPHER_MEMORY_BUDGET_BYTES: String(MiB - 1) },
    { SPIKE_NEXUS_CIPHER_MEMORY_BUDGET_BYTES: '256MiB' },
  ]) {
    assert.throws(() => loadNexusConfig({ ...mem, ...bad }), ConfigError, JSON.stringify(bad));
  }
});

test('SPIKE_HTTP_SERVER_REQUEST_TIMEOUT: a whole request within 60 s by default; 0 = no bound (long cipher streams); a bad value is refused', () => {
  const mem = { SPIKE_NEXUS_BACKEND_STORE: 'memory' };
  assert.equal(loadNexusConfig(mem).requestTimeoutMs, 60_000);
  assert.equal(loadNexusConfig({ ...mem, SPIKE_HTTP_SERVER_REQUEST_TIMEOUT: '0' }).requestTimeoutMs, 0);
  assert.equal(loadNexusConfig({ ...mem, SPIKE_HTTP_SERVER_REQUEST_TIMEOUT: '2h' }).requestTimeoutMs, 7_200_000);
  for (const bad of ['-1s', 'soon', '1y']) {
    assert.throws(() => loadNexusConfig({ ...mem, SPIKE_HTTP_SERVER_REQUEST_TIMEOUT: bad }), ConfigError, bad);
  }
});

test('operations listener: unset = off, ":port" binds loopback, an explicit host is kept', () => {
  const base = { SPIKE_NEXUS_BACKEND_STORE: 'memory' };
  assert.equal(loadNexusConfig(base).ops, undefined);
  assert.deepEqual(loadNexusConfig({ ...base, SPIKE_NEXUS_OPS_ADDR: ':9090' }).ops, { host: '127.0.0.1', port: 9090 });
  assert.deepEqual(loadNexusConfig({ ...base, SPIKE_NEXUS_OPS_ADDR: '0.0.0.0:9090' }).ops, { host: '0.0.0.0', port: 9090 });
  assert.deepEqual(loadKeeperConfig({ SPIKE_KEEPER_OPS_ADDR: '[::1]:9091' }).ops, { host: '::1', port: 9091 });
  assert.equal(loadKeeperConfig({}).ops, undefined);
  assert.throws(() => loadKeeperConfig({ SPIKE_KEEPER_OPS_ADDR: '9091' }), ConfigError);
});

test('SPIKE_NEXUS_SHARE_REFRESH_INTERVAL: off by default and at 0; a Go duration of at least 1s; anything else refused', () => {
  const base = { SPIKE_NEXUS_SHAMIR_SHARES: '3', SPIKE_NEXUS_SHAMIR_THRESHOLD: '2', SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,https://b:2,https://c:3' };
  assert.equal(loadNexusConfig(base).shareRefreshIntervalMs, 0);
  assert.equal(loadNexusConfig({ ...base, SPIKE_NEXUS_SHARE_REFRESH_INTERVAL: '0' }).shareRefreshIntervalMs, 0);
  assert.equal(loadNexusConfig({ ...base, SPIKE_NEXUS_SHARE_REFRESH_INTERVAL: '24h' }).shareRefreshIntervalMs, 86_400_000);
  for (const bad of ['500ms', 'daily', '-1s']) {
    assert.throws(() => loadNexusConfig({ ...base, SPIKE_NEXUS_SHARE_REFRESH_INTERVAL: bad }), ConfigError, bad);
  }
  // A month is longer than a Node timer runs: setInterval would fire every millisecond (a
  // refresh storm against the Keepers), so it is refused with the bound named.
  assert.equal(loadNexusConfig({ ...base, SPIKE_NEXUS_SHARE_REFRESH_INTERVAL: '336h' }).shareRefreshIntervalMs, 336 * 3_600_000);
  assert.throws(() => loadNexusConfig({ ...base, SPIKE_NEXUS_SHARE_REFRESH_INTERVAL: '720h' }), /must be at most 596h/);
});

test('CFG-01: SPIKE_NEXUS_WORKERS: 1 by default, 1..64, above 1 only on sqlite or postgres and with an audit file', () => {
  const pg = {
    SPIKE_NEXUS_BACKEND_STORE: 'postgres', SPIKE_NEXUS_DATABASE_URL: 'postgres://u@127.0.0.1:5432/spike',
    SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,https://b:2,https://c:3',
  };
  assert.equal(loadNexusConfig(pg).workers, 1);
  assert.equal(loadNexusConfig({ ...pg, SPIKE_NEXUS_WORKERS: '4' }).workers, 4);
  assert.equal(loadNexusConfig({ ...pg, SPIKE_NEXUS_WORKERS: '2', SPIKE_NEXUS_AUDIT_LOG: '/var/log/spike/audit.log' }).workers, 2);
  assert.equal(loadNexusConfig({ SPIKE_NEXUS_BACKEND_STORE: 'memory', SPIKE_NEXUS_WORKERS: '1' }).workers, 1);
  assert.equal(loadNexusConfig({ ...pg, SPIKE_NEXUS_WORKERS: '2', SPIKE_NEXUS_OPS_ADDR: ':65534' }).workers, 2);
  assert.equal(loadNexusConfig({ SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,https://b:2,https://c:3', SPIKE_NEXUS_WORKERS: '3' }).workers, 3); // sqlite
  for (const bad of [
    { ...pg, SPIKE_NEXUS_WORKERS: '0' }, { ...pg, SPIKE_NEXUS_WORKERS: '65' }, { ...pg, SPIKE_NEXUS_WORKERS: 'two' },
    { ...pg, SPIKE_NEXUS_WORKERS: '2', SPIKE_NEXUS_AUDIT_LOG: '-' },
    { ...pg, SPIKE_NEXUS_WORKERS: '2', SPIKE_NEXUS_OPS_ADDR: ':65535' },
    { ...pg, SPIKE_NEXUS_WORKERS: '2', SPIKE_NEXUS_OPS_ADDR: '127.0.0.1:0' },
    { SPIKE_NEXUS_BACKEND_STORE: 'memory', SPIKE_NEXUS_WORKERS: '2' },
    { SPIKE_NEXUS_BACKEND_STORE: 'lite', SPIKE_NEXUS_KEEPER_PEERS: 'https://a:1,https://b:2,https://c:3', SPIKE_NEXUS_WORKERS: '2' },
  ]) assert.throws(() => loadNexusConfig(bad), (e: Error) => e instanceof ConfigError && /^SPIKE_NEXUS_WORKERS/.test(e.message), JSON.stringify(bad));
});

test('sharing-move and rollback-check timers: defaults, set values, ranges', () => {
  const base = { SPIKE_NEXUS_BACKEND_STORE: 'memory' };
  assert.deepEqual(loadNexusConfig(base).keyTimers, {
    moveKeeperRetryInitialMs: 250, moveKeeperRetryMaxMs: 4000, moveLeaseTtlMs: 15_000, rollbackCheckWindowMs: 3000, rollbackCheckMaxMs: 30_000,
  });
  assert.deepEqual(loadNexusConfig({
    ...base, SPIKE_NEXUS_MOVE_KEEPER_RETRY_INITIAL_INTERVAL: '50ms', SPIKE_NEXUS_MOVE_KEEPER_RETRY_MAX_INTERVAL: '200ms',
    SPIKE_NEXUS_MOVE_LEASE_TTL: '3s', SPIKE_NEXUS_ROLLBACK_CHECK_WINDOW: '0', SPIKE_NEXUS_ROLLBACK_CHECK_MAX: '2s',
  }).keyTimers, { moveKeeperRetryInitialMs: 50, moveKeeperRetryMaxMs: 200, moveLeaseTtlMs: 3000, rollbackCheckWindowMs: 0, rollbackCheckMaxMs: 2000 });
  assert.equal(loadNexusConfig({ ...base, SPIKE_NEXUS_ROLLBACK_CHECK_WINDOW: '1m', SPIKE_NEXUS_ROLLBACK_CHECK_MAX: '2m' }).keyTimers.rollbackCheckWindowMs, 60_000);
  // A MAX below the window's default shortens the window too.
  assert.deepEqual({ ...loadNexusConfig({ ...base, SPIKE_NEXUS_ROLLBACK_CHECK_MAX: '2s' }).keyTimers }, {
    moveKeeperRetryInitialMs: 250, moveKeeperRetryMaxMs: 4000, moveLeaseTtlMs: 15_000, rollbackCheckWindowMs: 2000, rollbackCheckMaxMs: 2000,
  });
  const bad: Record<string, string>[] = [
    { SPIKE_NEXUS_MOVE_KEEPER_RETRY_INITIAL_INTERVAL: '1ms' },
    { SPIKE_NEXUS_MOVE_KEEPER_RETRY_INITIAL_INTERVAL: '2m' },
    { SPIKE_NEXUS_MOVE_KEEPER_RETRY_INITIAL_INTERVAL: '1s', SPIKE_NEXUS_MOVE_KEEPER_RETRY_MAX_INTERVAL: '500ms' },
    { SPIKE_NEXUS_MOVE_KEEPER_RETRY_MAX_INTERVAL: '6m' },
    { SPIKE_NEXUS_MOVE_LEASE_TTL: '999ms' },
    { SPIKE_NEXUS_MOVE_LEASE_TTL: '11m' },
    { SPIKE_NEXUS_MOVE_LEASE_TTL: 'soon' },
    { SPIKE_NEXUS_ROLLBACK_CHECK_WINDOW: '31s' },
    { SPIKE_NEXUS_ROLLBACK_CHECK_WINDOW: '5s', SPIKE_NEXUS_ROLLBACK_CHECK_MAX: '4s' },
    { SPIKE_NEXUS_ROLLBACK_CHECK_MAX: '999ms' },
    { SPIKE_NEXUS_ROLLBACK_CHECK_MAX: '11m' },
  ];
  for (const extra of bad) assert.throws(() => loadNexusConfig({ ...base, ...extra }), ConfigError, JSON.stringify(extra));
});

test('servers refuse an unknown argument (exit 2) and name only its flag, never a value typed after it', async () => {
  const { shownArgument } = await import('./startup.js');
  assert.equal(shownArgument('--db-password=hunter2', 0), '"--db-password"');
  assert.equal(shownArgument('--port', 1), '"--port"');
  assert.equal(shownArgument('-x', 0), '"-x"');
  assert.equal(shownArgument('hunter2', 2), '#3 (not shown)');
  assert.equal(shownArgument('KEY=secret', 0), '#1 (not shown)');
  assert.equal(shownArgument('--a=b=c', 0), '"--a"');
  assert.equal(shownArgument(`--${'x'.repeat(40)}`, 0), '#1 (not shown)');
  const { spawnSync } = await import('node:child_process');
  const { binPath } = await import('../../test/helpers/bin.js');
  for (const [bin, args] of [['spike-keeper', ['--db-password=hunter2']], ['spike-nexus', ['hunter2']], ['spike-bootstrap', ['-init', '--token=hunter2']]] as const) {
    const r = spawnSync(process.execPath, [binPath(bin), ...args], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env['PATH'] ?? '' } });
    assert.equal(r.status, 2, `${bin}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^${bin}: unknown argument `), bin);
    assert.ok(!r.stderr.includes('hunter2'), `${bin} echoed the value: ${r.stderr}`);
  }
});
