/**
 * Operations: the plain-HTTP probes and metrics listener (listener.ts), the bounded
 * dependency probe behind `/readyz` (probe.ts) and the Prometheus metric definitions
 * (metrics.ts). Other folders report into metrics through small observer interfaces of their
 * own; only this folder imports prom-client.
 */
export { type MetricsSource, type OpsServer, type OpsServerOptions, type Readiness, createOpsServer } from './listener.js';
export { cachedProbe } from './probe.js';
export { type RecoveryObserver, type SpikeMetrics, type StateReaders, createMetrics } from './metrics.js';
