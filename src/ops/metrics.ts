/**
 * Every Prometheus metric SPIKE exports (prom-client), in one registry per process, and the
 * adapters that turn the observer hooks of other folders (router, mTLS server, store, key
 * recovery, policy sync) into updates. Label values are bounded sets only: route paths and
 * actions of the route table, decisions, status codes, fixed reason codes, store method
 * names, Keeper indexes 1..n. Never a secret path, a value or a workload SPIFFE ID.
 * Names and meanings: docs/operations.md.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RequestObserver } from '../http/index.js';
import { mallocTrimReading } from '../lib/index.js';
import type { MtlsObserver } from '../spiffe/index.js';
import type { StoreObserver } from '../store/index.js';
import type { MetricsSource } from './listener.js';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Live values read at scrape time (each optional). */
export interface StateReaders {
  tlsConnections?: () => { verified: number; handshaking: number };
  svidExpiry?: () => Date | undefined;
  rootKeyPresent?: () => boolean;
  ready?: () => boolean;
  epoch?: () => number | undefined;
  policyCount?: () => number;
  shareHeld?: () => boolean;
  /** Nexus with a persistent store: the keyring and the background re-encryption (undefined while locked). */
  keyring?: () => KeyringReading | undefined;
}

/** What the keyring gauges read (no label values: one series each). */
export interface KeyringReading {
  storageGenerations: number;
  storageKeyId: number;
  cipherVersion: number;
  /** Encryptions counted (reserved ahead) under the current storage / cipher key. */
  storageSeals: number;
  cipherSeals: number;
  /** Records re-encrypted by this process since it started. */
  rewritten: number;
  running: boolean;
}

/** Key recovery and share re-push, per Keeper index (1..n). */
export interface RecoveryObserver {
  keeperContact(index: number): void;
  pushResult(index: number, ok: boolean): void;
  sharesCollected(n: number): void;
}

export interface SpikeMetrics {
  readonly registry: Registry;
  readonly source: MetricsSource;
  readonly requests: RequestObserver;
  readonly tls: MtlsObserver;
  readonly store: StoreObserver;
  readonly recovery: RecoveryObserver;
  policyReloaded(seconds: number): void;
  commitBatch(size: number): void;
  cipherBytes(direction: 'in' | 'out', bytes: number): void;
  /** Rollback detection: the store's anchor counter, what each Keeper acknowledged, the refusal flag. */
  readonly anchor: { anchorPushed(index: number, counter: number): void; anchorCounter(counter: number): void; rollbackDetected(detected: boolean): void };
  /** Audit entries written (durable) and lost to a failed write (src/audit). */
  readonly audit: { written(n: number): void; failed(n: number): void };
  /** Registers the live readers (called once wiring is done). */
  read(readers: StateReaders): void;
}

/** The keyring and re-encryption gauges (docs/operations.md). */
function keyringGauges(registry: Registry, read: () => KeyringReading | undefined): void {
  const g = (name: string, help: string, pick: (k: KeyringReading) => number): void => {
    gaugeFrom(registry, name, help, () => {
      const k = read();
      return k === undefined ? undefined : pick(k);
    });
  };
  g('spike_keyring_storage_generations', 'storage keys held in the keyring (1 when no re-encryption is pending)', (k) => k.storageGenerations);
  g('spike_keyring_storage_key_id', 'key id of the storage key new records are sealed with', (k) => k.storageKeyId);
  g('spike_keyring_cipher_version', 'cipher key version new ciphertexts get', (k) => k.cipherVersion);
  g('spike_aead_storage_seals', 'AES-GCM encryptions counted under the current storage key (reserved ahead in blocks)', (k) => k.storageSeals);
  g('spike_aead_cipher_seals', 'AES-GCM encryptions counted under the current cipher key (reserved ahead in blocks)', (k) => k.cipherSeals);
  g('spike_reencrypt_records_rewritten', 're-encrypted records since this process started', (k) => k.rewritten);
  g('spike_reencrypt_running', '1 while the background re-encryption runs', (k) => (k.running ? 1 : 0));
}

/** Giving freed native memory back (src/lib/malloc-trim.ts): whether it runs, and what it did. */
function mallocTrimMetrics(registry: Registry): void {
  gaugeFrom(registry, 'spike_malloc_trim_active', '1 while this process gives freed native memory back to the system (malloc_trim), 0 where it cannot', () => (mallocTrimReading()?.active === true ? 1 : 0));
  counterFrom(registry, 'spike_malloc_trims_total', 'malloc_trim runs since start, the one at start included', () => mallocTrimReading()?.trims);
  counterFrom(registry, 'spike_malloc_trim_released_bytes_total', 'RSS given back by those runs since start', () => mallocTrimReading()?.releasedBytes);
}

const statusClass = (s: number): string => `${Math.floor(s / 100)}xx`;
/** A counter whose value is read from a running total at each scrape (undefined: left as it is). */
const counterFrom = (registry: Registry, name: string, help: string, value: () => number | undefined): Counter =>
  new Counter({
    name, help, registers: [registry],
    collect() {
      const v = value();
      if (v === undefined) return;
      this.reset();
      this.inc(v);
    },
  });
const gaugeFrom = (registry: Registry, name: string, help: string, value: () => number | undefined, labelNames: string[] = []): Gauge =>
  new Gauge({
    name, help, labelNames, registers: [registry],
    collect() {
      const v = value();
      if (v !== undefined) this.set(v);
    },
  });

/** A fresh registry with every SPIKE metric and the default process metrics. */
export function createMetrics(): SpikeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let r: StateReaders = {};
  const requests = new Counter({ name: 'spike_http_requests_total', help: 'API requests by route, action, authorisation decision and status', labelNames: ['route', 'action', 'decision', 'status'], registers: [registry] });
  const duration = new Histogram({ name: 'spike_http_request_duration_seconds', help: 'API request latency', labelNames: ['route', 'action', 'status_class'], buckets: LATENCY_BUCKETS, registers: [registry] });
  const inflight = new Gauge({ name: 'spike_http_requests_in_flight', help: 'API requests being answered', registers: [registry] });
  gaugeFrom(registry, 'spike_tls_connections_verified', 'mTLS connections whose client SVID was verified', () => r.tlsConnections?.().verified);
  gaugeFrom(registry, 'spike_tls_connections_handshaking', 'sockets still in the TLS handshake', () => r.tlsConnections?.().handshaking);
  const refused = new Counter({ name: 'spike_tls_connections_refused_total', help: 'connections refused or evicted by the connection budgets, by reason', labelNames: ['reason'], registers: [registry] });
  const hsFail = new Counter({ name: 'spike_tls_handshake_failures_total', help: 'failed TLS handshakes and SVID checks, by reason', labelNames: ['reason'], registers: [registry] });
  gaugeFrom(registry, 'spike_svid_expiry_timestamp_seconds', 'notAfter of this process\'s own X.509-SVID (unix seconds)', () => {
    const d = r.svidExpiry?.();
    return d === undefined ? undefined : Math.floor(d.getTime() / 1000);
  });
  gaugeFrom(registry, 'spike_ready', '1 when /readyz would answer 200', () => (r.ready === undefined ? undefined : r.ready() ? 1 : 0));
  gaugeFrom(registry, 'spike_root_key_present', '1 when Nexus holds the root key', () => (r.rootKeyPresent === undefined ? undefined : r.rootKeyPresent() ? 1 : 0));
  gaugeFrom(registry, 'spike_sharing_epoch', 'epoch of the current root-key sharing', () => r.epoch?.());
  gaugeFrom(registry, 'spike_policies', 'policies loaded in the engine', () => r.policyCount?.());
  keyringGauges(registry, () => r.keyring?.());
  mallocTrimMetrics(registry);
  gaugeFrom(registry, 'spike_keeper_share_held', '1 when this Keeper holds a verified share', () => (r.shareHeld === undefined ? undefined : r.shareHeld() ? 1 : 0));
  const collected = new Gauge({ name: 'spike_recovery_shares_collected', help: 'verified Keeper shares collected toward the threshold (recovery)', registers: [registry] });
  const contact = new Gauge({ name: 'spike_keeper_last_contact_timestamp_seconds', help: 'last successful exchange with each Keeper (unix seconds), by configured index', labelNames: ['keeper'], registers: [registry] });
  const push = new Gauge({ name: 'spike_keeper_last_push_success', help: '1 when the last share push to each Keeper succeeded, 0 when it failed', labelNames: ['keeper'], registers: [registry] });
  const storeOps = new Histogram({ name: 'spike_store_operation_duration_seconds', help: 'store operation latency by operation and result', labelNames: ['op', 'result'], buckets: LATENCY_BUCKETS, registers: [registry] });
  const batch = new Histogram({ name: 'spike_store_commit_batch_size', help: 'writes per group commit (sqlite)', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [registry] });
  const reload = new Histogram({ name: 'spike_policy_reload_duration_seconds', help: 'time to load every policy into the engine', buckets: LATENCY_BUCKETS, registers: [registry] });
  const auditWrites = new Counter({ name: 'spike_audit_writes_total', help: 'audit entries written and synced to disk', registers: [registry] });
  const auditFailures = new Counter({ name: 'spike_audit_failures_total', help: 'audit entries that could not be written (their requests were refused)', registers: [registry] });
  const anchorStore = new Gauge({ name: 'spike_anchor_counter', help: 'the store\'s rollback-anchor commit counter, as last pushed to the Keepers', registers: [registry] });
  const anchorKeeper = new Gauge({ name: 'spike_keeper_anchor_counter', help: 'the rollback-anchor counter each Keeper last acknowledged, by configured index', labelNames: ['keeper'], registers: [registry] });
  const rollback = new Gauge({ name: 'spike_rollback_detected', help: '1 while Nexus refuses to serve because the store is older than the Keepers\' anchor', registers: [registry] });
  const cipher = new Counter({ name: 'spike_cipher_bytes_total', help: 'bytes through the cipher API, by direction', labelNames: ['direction'], registers: [registry] });

  return {
    registry,
    source: { contentType: registry.contentType, render: () => registry.metrics() },
    requests: {
      started: () => inflight.inc(),
      finished: (e) => {
        inflight.dec();
        requests.inc({ route: e.route, action: e.action, decision: e.decision, status: String(e.status) });
        duration.observe({ route: e.route, action: e.action, status_class: statusClass(e.status) }, e.seconds);
      },
    },
    tls: {
      refused: (reason) => refused.inc({ reason }),
      handshakeFailed: (reason) => hsFail.inc({ reason }),
    },
    store: { operation: (op, seconds, ok) => storeOps.observe({ op, result: ok ? 'ok' : 'error' }, seconds) },
    recovery: {
      keeperContact: (index) => contact.set({ keeper: String(index) }, Math.floor(Date.now() / 1000)),
      pushResult: (index, ok) => push.set({ keeper: String(index) }, ok ? 1 : 0),
      sharesCollected: (n) => collected.set(n),
    },
    policyReloaded: (seconds) => reload.observe(seconds),
    commitBatch: (size) => batch.observe(size),
    audit: { written: (n) => auditWrites.inc(n), failed: (n) => auditFailures.inc(n) },
    anchor: {
      anchorPushed: (index, counter) => anchorKeeper.set({ keeper: String(index) }, counter),
      anchorCounter: (counter) => anchorStore.set(counter),
      rollbackDetected: (detected) => rollback.set(detected ? 1 : 0),
    },
    cipherBytes: (direction, bytes) => cipher.inc({ direction }, bytes),
    read: (readers) => { r = { ...r, ...readers }; },
  };
}
