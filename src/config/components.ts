/**
 * Per-component configuration, read once at start-up from the environment and validated
 * (CFG-01: a bad value stops the process before it listens). Variable names and
 * defaults follow SPIKE; additions are marked "ours".
 */
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_WORKLOAD_API_ENDPOINT, MTLS_DEFAULTS } from '../spiffe/index.js';
import type { PostgresEnvOptions } from '../store/index.js';
import { postgresOptionsFromEnv } from './postgres-env.js';
import { MAX_CIPHER_STREAM_BYTES } from '../protocol/curve-free.js';
import { ConfigError, type Env, bool, duration, httpsUrlList, int, listenAddress, oneOf, optionalStr, type ListenAddress } from '../lib/index.js';

export interface CommonConfig {
  endpointSocket: string;
  /** No SPIFFE_ENDPOINT_SOCKET: the standard default, trusted only as `assertDefaultTrusted` says. */
  endpointIsDefault: boolean;
  /** Time limit for the first SVID (ms); undefined = wait forever (SPIKE's servers). */
  sourceTimeoutMs: number | undefined;
}

function loadCommon(env: Env, waitForever: boolean): CommonConfig {
  const configured = optionalStr(env, 'SPIFFE_ENDPOINT_SOCKET');
  const endpointSocket = configured ?? DEFAULT_WORKLOAD_API_ENDPOINT;
  if (!endpointSocket.startsWith('unix://') && !endpointSocket.startsWith('unix:')) {
    throw new ConfigError('SPIFFE_ENDPOINT_SOCKET', 'must be a unix:// socket address');
  }
  const timeout = duration(env, 'SPIKE_SPIFFE_SOURCE_TIMEOUT', 30_000, 1);
  return { endpointSocket, endpointIsDefault: configured === undefined, sourceTimeoutMs: waitForever ? undefined : timeout };
}

interface ShamirConfig { shares: number; threshold: number }

function loadShamir(env: Env): ShamirConfig {
  const shares = int(env, 'SPIKE_NEXUS_SHAMIR_SHARES', 3, 1, 255);
  const threshold = int(env, 'SPIKE_NEXUS_SHAMIR_THRESHOLD', 2, 1, 255);
  if (threshold > shares) throw new ConfigError('SPIKE_NEXUS_SHAMIR_THRESHOLD', 'must not exceed SPIKE_NEXUS_SHAMIR_SHARES');
  return { shares, threshold };
}

function loadKeeperPeers(env: Env, shamir: ShamirConfig, required: boolean): string[] {
  const peers = httpsUrlList(env, 'SPIKE_NEXUS_KEEPER_PEERS', required);
  if (peers.length > 0 && peers.length !== shamir.shares) {
    throw new ConfigError('SPIKE_NEXUS_KEEPER_PEERS', 'must list exactly SPIKE_NEXUS_SHAMIR_SHARES Keepers');
  }
  // One share per Keeper: a URL listed twice would give that Keeper two shares.
  if (new Set(peers).size !== peers.length) throw new ConfigError('SPIKE_NEXUS_KEEPER_PEERS', 'must not list a Keeper twice');
  return peers;
}

const FORBIDDEN_DIRS = ['/etc', '/sys', '/proc', '/dev', '/bin', '/sbin', '/usr', '/lib', '/lib64', '/boot', '/root'];

/** SPIKE's data-directory rules for `SPIKE_NEXUS_DATA_DIR`: `<dir>/data/spike.db`, never under system dirs. */
export function resolveDataDir(env: Env): string {
  const custom = optionalStr(env, 'SPIKE_NEXUS_DATA_DIR');
  let base: string;
  if (custom !== undefined) {
    const abs = path.resolve(custom);
    if (abs === '/' || FORBIDDEN_DIRS.some((d) => abs === d || abs.startsWith(`${d}/`))) {
      throw new ConfigError('SPIKE_NEXUS_DATA_DIR', 'must not be / or a system directory');
    }
    base = abs;
  } else {
    const home = os.homedir();
    base = home ? path.join(home, '.spike') : path.join('/tmp', `.spike-${env['USER'] ?? 'spike'}`);
  }
  return path.join(base, 'data');
}

/**
 * ours: connection limits and timeouts of an mTLS listener (Nexus and Keeper alike). Field
 * names match the server's options; defaults are the server's (documented in
 * docs/configuration.md).
 */
interface ServerLimitsConfig {
  maxConnections: number;
  maxHandshakes: number;
  maxHandshakesPerSource: number;
  handshakeTimeoutMs: number;
  handshakeSlots: number;
  maxConnectionAgeMs: number;
  inactivityTimeoutMs: number;
}

/**
 * A Keeper's default handshake budget: it is only ever called by Nexus and Bootstrap (a few
 * connections), so the room Nexus keeps for client pools opening hundreds of connections at
 * once would only raise what a flood can hold there.
 */
const KEEPER_MAX_HANDSHAKES = 256;

function loadServerLimits(env: Env, defaultMaxHandshakes: number = MTLS_DEFAULTS.maxHandshakes): ServerLimitsConfig {
  const d = MTLS_DEFAULTS;
  return {
    maxConnections: int(env, 'SPIKE_HTTP_SERVER_MAX_CONNECTIONS', d.maxConnections, 1, 1_000_000),
    maxHandshakes: int(env, 'SPIKE_HTTP_SERVER_MAX_HANDSHAKES', defaultMaxHandshakes, 1, 1_000_000),
    maxHandshakesPerSource: int(env, 'SPIKE_HTTP_SERVER_MAX_HANDSHAKES_PER_SOURCE', d.maxHandshakesPerSource, 1, 1_000_000),
    handshakeTimeoutMs: duration(env, 'SPIKE_HTTP_SERVER_HANDSHAKE_TIMEOUT', d.handshakeTimeoutMs, 100),
    handshakeSlots: int(env, 'SPIKE_HTTP_SERVER_HANDSHAKE_SLOTS', d.handshakeSlots, 0, 1_000_000),
    maxConnectionAgeMs: duration(env, 'SPIKE_HTTP_SERVER_MAX_CONNECTION_AGE', d.maxConnectionAgeMs, 0),
    inactivityTimeoutMs: duration(env, 'SPIKE_HTTP_SERVER_INACTIVITY_TIMEOUT', d.inactivityTimeoutMs, 0),
  };
}

/**
 * ours: the plain-HTTP operations listener (probes and metrics, src/ops). Unset = off. A
 * bare `:port` binds loopback (127.0.0.1), never every interface: the listener has no TLS
 * and no client identity, so reaching it from the network takes an explicit host
 * (`0.0.0.0:9090`, `10.0.0.5:9090`).
 */
export interface OpsAddress { host: string; port: number }

function opsAddress(env: Env, name: string): OpsAddress | undefined {
  if (optionalStr(env, name) === undefined) return undefined;
  const a = listenAddress(env, name, '');
  return { host: a.host ?? '127.0.0.1', port: a.port };
}

type BackendKind = 'sqlite' | 'lite' | 'memory' | 'postgres';

/** ours: the largest streamed cipher plaintext (defined with the wire limits). */
export { MAX_CIPHER_STREAM_BYTES };

export interface NexusConfig extends CommonConfig {
  listen: ListenAddress;
  backend: BackendKind;
  keeperPeers: string[];
  shamir: ShamirConfig;
  maxShareCount: number;
  keeperUpdateIntervalMs: number;
  /** ours: period of the cheap Keeper status probe that re-pushes a share to an empty or stale Keeper at once (SPIKE_NEXUS_KEEPER_PROBE_INTERVAL, default 2 s). */
  keeperProbeIntervalMs: number;
  /** Period of the scheduled share refresh (SPIKE_NEXUS_SHARE_REFRESH_INTERVAL); 0 = off (default). */
  shareRefreshIntervalMs: number;
  recoveryMaxIntervalMs: number;
  /** Period of the "not ready" WARN line while waiting for Keeper shares (SPIKE_NEXUS_NOT_READY_LOG_INTERVAL, default 30 s). */
  notReadyLogIntervalMs: number;
  maxSecretVersions: number;
  maxCiphertextBytes: number;
  /** ours: cap on JSON request bodies (D4). */
  maxBodyBytes: number;
  /** ours: cap on a streamed cipher plaintext (≤ {@link MAX_CIPHER_STREAM_BYTES}). */
  maxStreamBytes: number;
  /** ours: bytes all in-flight cipher requests together may hold (SPIKE_NEXUS_CIPHER_MEMORY_BUDGET_BYTES). */
  cipherMemoryBudgetBytes: number;
  dataDir: string;
  dbBusyTimeoutMs: number;
  readHeaderTimeoutMs: number;
  /** Longest time to receive a whole request (SPIKE_HTTP_SERVER_REQUEST_TIMEOUT, Vault's `http_read_timeout`); 0 = none. */
  requestTimeoutMs: number;
  /** ours: connection limits of the mTLS listener. */
  serverLimits: ServerLimitsConfig;
  /** ours: the `postgres` backend's settings (SPIKE_NEXUS_DATABASE_URL, SPIKE_NEXUS_DB_*). */
  postgres: PostgresEnvOptions | undefined;
  /** ours: operations listener (SPIKE_NEXUS_OPS_ADDR); undefined = off. */
  ops: OpsAddress | undefined;
  /** ours: audit trail file, `-` = standard output (SPIKE_NEXUS_AUDIT_LOG); undefined = off. */
  auditLog: string | undefined;
  /** ours: rotate the audit file past this size (SPIKE_NEXUS_AUDIT_MAX_BYTES, default 100 MiB). */
  auditMaxBytes: number;
  /** ours: records re-encrypted per second after a key rotation (SPIKE_NEXUS_REENCRYPT_RATE, default 500). */
  reencryptRate: number;
  /** ours: most time one secret listing that decides per path may take from its start (SPIKE_NEXUS_LIST_POLICY_BUDGET, default 5 s). */
  listPolicyBudgetMs: number;
  /** ours: adopt a sharing record written before integrity tags, once (SPIKE_NEXUS_ACCEPT_UNTAGGED_SHARING). */
  acceptUntaggedSharing: boolean;
  /** ours: most AES-GCM encryptions under one key before it rotates (SPIKE_NEXUS_AEAD_SEAL_LIMIT, default 2^31). */
  aeadSealLimit: number;
  /** ours: processes serving the one listener (SPIKE_NEXUS_WORKERS, default 1; > 1 needs sqlite or postgres). */
  workers: number;
  /** ours: sharing-move timers and the start-up rollback check's wait for silent Keepers. */
  keyTimers: KeyTimersConfig;
}

/**
 * ours: how long a sharing move retries a Keeper (backoff from `moveKeeperRetryInitialMs` up to
 * `moveKeeperRetryMaxMs`, 6 attempts), how long a move lease left by a dead process blocks the
 * next move (`moveLeaseTtlMs`, renewed every third of it), how long the start-up rollback
 * check waits for every Keeper before deciding on a threshold of them (`rollbackCheckWindowMs`),
 * and how long it waits for a threshold before deciding on whatever answered (`rollbackCheckMaxMs`).
 */
export interface KeyTimersConfig {
  moveKeeperRetryInitialMs: number;
  moveKeeperRetryMaxMs: number;
  moveLeaseTtlMs: number;
  rollbackCheckWindowMs: number;
  rollbackCheckMaxMs: number;
}

/** A duration setting within [min, max] ms. */
function durationIn(env: Env, name: string, defMs: number, minMs: number, maxMs: number): number {
  const ms = duration(env, name, defMs, minMs);
  if (ms > maxMs) throw new ConfigError(name, `must be at most ${maxMs}ms`);
  return ms;
}

/** The defaults of {@link KeyTimersConfig}, in one place (the modules that use them default to these too). */
export const KEY_TIMER_DEFAULTS: Readonly<KeyTimersConfig> = Object.freeze({
  moveKeeperRetryInitialMs: 250,
  moveKeeperRetryMaxMs: 4000,
  moveLeaseTtlMs: 15_000,
  rollbackCheckWindowMs: 3000,
  rollbackCheckMaxMs: 30_000,
});

function loadKeyTimers(env: Env): KeyTimersConfig {
  const d = KEY_TIMER_DEFAULTS;
  const initial = durationIn(env, 'SPIKE_NEXUS_MOVE_KEEPER_RETRY_INITIAL_INTERVAL', d.moveKeeperRetryInitialMs, 10, 60_000);
  const max = durationIn(env, 'SPIKE_NEXUS_MOVE_KEEPER_RETRY_MAX_INTERVAL', d.moveKeeperRetryMaxMs, 10, 5 * 60_000);
  if (max < initial) throw new ConfigError('SPIKE_NEXUS_MOVE_KEEPER_RETRY_MAX_INTERVAL', 'must not be below SPIKE_NEXUS_MOVE_KEEPER_RETRY_INITIAL_INTERVAL');
  const checkMax = durationIn(env, 'SPIKE_NEXUS_ROLLBACK_CHECK_MAX', d.rollbackCheckMaxMs, 1000, 10 * 60_000);
  // The window's default shrinks to a shorter MAX; a window set above MAX is refused.
  const window = durationIn(env, 'SPIKE_NEXUS_ROLLBACK_CHECK_WINDOW', Math.min(d.rollbackCheckWindowMs, checkMax), 0, 10 * 60_000);
  if (window > checkMax) throw new ConfigError('SPIKE_NEXUS_ROLLBACK_CHECK_WINDOW', 'must not be above SPIKE_NEXUS_ROLLBACK_CHECK_MAX');
  return {
    moveKeeperRetryInitialMs: initial,
    moveKeeperRetryMaxMs: max,
    // At least 1 s: the holder renews every third of it, through the store.
    moveLeaseTtlMs: durationIn(env, 'SPIKE_NEXUS_MOVE_LEASE_TTL', d.moveLeaseTtlMs, 1000, 10 * 60_000),
    rollbackCheckWindowMs: window,
    rollbackCheckMaxMs: checkMax,
  };
}

/** ours: the most worker processes one Nexus may run. */
export const MAX_NEXUS_WORKERS = 64;

/**
 * SPIKE_NEXUS_WORKERS: every worker is a whole Nexus on the shared store, so more than one
 * needs a store other processes can see: postgres, or the SQLite file (each worker's
 * connection takes SQLite's one write lock in turn; `lite` and `memory` live in one process's
 * memory). The audit trail is one
 * hash chain per writer, so standard output (where chains would interleave) is refused; each
 * worker serves operations on the configured port + worker - 1, which must stay a port.
 */
function nexusWorkers(env: Env, backend: BackendKind, auditLog: string | undefined, ops: OpsAddress | undefined): number {
  const n = int(env, 'SPIKE_NEXUS_WORKERS', 1, 1, MAX_NEXUS_WORKERS);
  if (n > 1 && ops !== undefined && ops.port === 0) throw new ConfigError('SPIKE_NEXUS_WORKERS', 'above 1 needs a fixed SPIKE_NEXUS_OPS_ADDR port (worker i serves on port + i - 1), not 0');
  if (ops !== undefined && ops.port + n - 1 > 65535) throw new ConfigError('SPIKE_NEXUS_WORKERS', 'one operations port per worker (SPIKE_NEXUS_OPS_ADDR port + worker - 1) would pass 65535');
  if (n > 1 && backend !== 'postgres' && backend !== 'sqlite') throw new ConfigError('SPIKE_NEXUS_WORKERS', 'above 1 needs SPIKE_NEXUS_BACKEND_STORE=sqlite or postgres');
  if (n > 1 && auditLog === '-') throw new ConfigError('SPIKE_NEXUS_WORKERS', 'above 1 needs SPIKE_NEXUS_AUDIT_LOG to be a file, not standard output');
  return n;
}

export function loadNexusConfig(env: Env): NexusConfig {
  const shamir = loadShamir(env);
  const backend = oneOf<BackendKind>(env, 'SPIKE_NEXUS_BACKEND_STORE', ['sqlite', 'lite', 'memory', 'postgres'], 'sqlite');
  const needsKeepers = backend !== 'memory';
  const postgres = backend === 'postgres' ? postgresOptionsFromEnv(env) : undefined;
  const auditLog = env['SPIKE_NEXUS_AUDIT_LOG']?.trim() || undefined;
  const ops = opsAddress(env, 'SPIKE_NEXUS_OPS_ADDR');
  return {
    ...loadCommon(env, true),
    listen: listenAddress(env, 'SPIKE_NEXUS_TLS_PORT', ':8553'),
    backend,
    keeperPeers: loadKeeperPeers(env, shamir, needsKeepers),
    shamir,
    maxShareCount: int(env, 'SPIKE_NEXUS_SHAMIR_MAX_SHARE_COUNT', 1000, 1, 1_000_000),
    keeperUpdateIntervalMs: duration(env, 'SPIKE_NEXUS_KEEPER_UPDATE_INTERVAL', 5 * 60_000, 10),
    keeperProbeIntervalMs: duration(env, 'SPIKE_NEXUS_KEEPER_PROBE_INTERVAL', 2000, 100),
    shareRefreshIntervalMs: refreshInterval(env, backend),
    recoveryMaxIntervalMs: duration(env, 'SPIKE_NEXUS_RECOVERY_MAX_INTERVAL', 60_000, 10),
    notReadyLogIntervalMs: duration(env, 'SPIKE_NEXUS_NOT_READY_LOG_INTERVAL', 30_000, 100),
    maxSecretVersions: int(env, 'SPIKE_NEXUS_MAX_SECRET_VERSIONS', 10, 1, 10_000),
    maxCiphertextBytes: int(env, 'SPIKE_NEXUS_CRYPTO_MAX_CIPHERTEXT_SIZE', 65_536, 1, 1 << 30),
    maxBodyBytes: int(env, 'SPIKE_NEXUS_MAX_BODY_BYTES', 1 << 20, 1024, 1 << 30),
    maxStreamBytes: int(env, 'SPIKE_NEXUS_CRYPTO_MAX_STREAM_SIZE', MAX_CIPHER_STREAM_BYTES, 1, MAX_CIPHER_STREAM_BYTES),
    cipherMemoryBudgetBytes: int(env, 'SPIKE_NEXUS_CIPHER_MEMORY_BUDGET_BYTES', 256 << 20, 1 << 20, 2 ** 40),
    dataDir: backend === 'sqlite' ? resolveDataDir(env) : '',
    dbBusyTimeoutMs: int(env, 'SPIKE_NEXUS_DB_BUSY_TIMEOUT_MS', 5000, 1, 600_000),
    readHeaderTimeoutMs: duration(env, 'SPIKE_HTTP_SERVER_READ_HEADER_TIMEOUT', 10_000, 1),
    requestTimeoutMs: duration(env, 'SPIKE_HTTP_SERVER_REQUEST_TIMEOUT', MTLS_DEFAULTS.requestTimeoutMs, 0),
    serverLimits: loadServerLimits(env),
    postgres,
    ops,
    auditLog,
    auditMaxBytes: int(env, 'SPIKE_NEXUS_AUDIT_MAX_BYTES', 100 * 1024 * 1024, 4096, 2 ** 50),
    reencryptRate: int(env, 'SPIKE_NEXUS_REENCRYPT_RATE', 500, 1, 1_000_000),
    listPolicyBudgetMs: duration(env, 'SPIKE_NEXUS_LIST_POLICY_BUDGET', 5000, 1),
    acceptUntaggedSharing: bool(env, 'SPIKE_NEXUS_ACCEPT_UNTAGGED_SHARING', false),
    // At most 2^31: half the 2^32 bound on random 96-bit nonces per key (NIST SP 800-38D §8.3).
    // At least 1024: a reservation block (limit/8) must hold a re-encryption batch (100 records).
    aeadSealLimit: int(env, 'SPIKE_NEXUS_AEAD_SEAL_LIMIT', 2 ** 31, 1024, 2 ** 31),
    workers: nexusWorkers(env, backend, auditLog, ops),
    keyTimers: loadKeyTimers(env),
  };
}

interface KeeperConfig extends CommonConfig {
  listen: ListenAddress;
  readHeaderTimeoutMs: number;
  /** ours: connection limits of the mTLS listener. */
  serverLimits: ServerLimitsConfig;
  /** ours: operations listener (SPIKE_KEEPER_OPS_ADDR); undefined = off. */
  ops: OpsAddress | undefined;
}

export function loadKeeperConfig(env: Env): KeeperConfig {
  return {
    ...loadCommon(env, true),
    listen: listenAddress(env, 'SPIKE_KEEPER_TLS_PORT', ':8443'),
    readHeaderTimeoutMs: duration(env, 'SPIKE_HTTP_SERVER_READ_HEADER_TIMEOUT', 10_000, 1),
    serverLimits: loadServerLimits(env, KEEPER_MAX_HANDSHAKES),
    ops: opsAddress(env, 'SPIKE_KEEPER_OPS_ADDR'),
  };
}

export interface BootstrapConfig extends CommonConfig {
  backend: BackendKind;
  keeperPeers: string[];
  shamir: ShamirConfig;
  nexusUrl: string;
  timeoutMs: number;
  keeperTimeoutMs: number;
  keeperMaxRetries: number;
  keeperRetryInitialMs: number;
  keeperRetryMaxMs: number;
  verificationTimeoutMs: number;
  force: boolean;
}

export function loadBootstrapConfig(env: Env): BootstrapConfig {
  const shamir = loadShamir(env);
  const backend = oneOf<BackendKind>(env, 'SPIKE_NEXUS_BACKEND_STORE', ['sqlite', 'lite', 'memory', 'postgres'], 'sqlite');
  const nexusUrls = httpsUrlList(env, 'SPIKE_NEXUS_API_URL', false);
  return {
    ...loadCommon(env, false),
    backend,
    keeperPeers: backend === 'memory' ? [] : loadKeeperPeers(env, shamir, true),
    shamir,
    nexusUrl: nexusUrls[0] ?? 'https://localhost:8553',
    timeoutMs: duration(env, 'SPIKE_BOOTSTRAP_TIMEOUT', 0),
    keeperTimeoutMs: duration(env, 'SPIKE_BOOTSTRAP_KEEPER_TIMEOUT', 30_000),
    keeperMaxRetries: int(env, 'SPIKE_BOOTSTRAP_KEEPER_MAX_RETRIES', 5, 1, 1000),
    keeperRetryInitialMs: duration(env, 'SPIKE_BOOTSTRAP_KEEPER_RETRY_INITIAL_INTERVAL', 2000, 1),
    keeperRetryMaxMs: duration(env, 'SPIKE_BOOTSTRAP_KEEPER_RETRY_MAX_INTERVAL', 30_000, 1),
    verificationTimeoutMs: duration(env, 'SPIKE_BOOTSTRAP_INIT_VERIFICATION_TIMEOUT', 30 * 60_000, 1),
    force: optionalStr(env, 'SPIKE_BOOTSTRAP_FORCE') === 'true',
  };
}

/** SPIKE_NEXUS_SHARE_REFRESH_INTERVAL: unset or `0` = off; otherwise at least one second. */
function refreshInterval(env: Env, backend: BackendKind): number {
  const ms = duration(env, 'SPIKE_NEXUS_SHARE_REFRESH_INTERVAL', 0, 0);
  if (ms > 0 && ms < 1000) throw new ConfigError('SPIKE_NEXUS_SHARE_REFRESH_INTERVAL', 'must be 0 (off) or at least 1s');
  if (ms > 0 && backend === 'lite') throw new ConfigError('SPIKE_NEXUS_SHARE_REFRESH_INTERVAL', 'is not available with the lite backend (its sharing record is kept in memory only)');
  return ms;
}
