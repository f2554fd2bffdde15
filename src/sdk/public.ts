/**
 * Public surface of the Node SDK for SPIKE Nexus, the entry of both packages' `exports`
 * (`@spike-ts/sdk` and `spike-ts`): what docs/sdk.md documents, nothing else. The rest of this
 * repository enters the SDK through index.ts, which adds the `spike` CLI's own helpers; those are
 * no promise to SDK users.
 */

export { NexusClient } from './client.js';
export { CLIENT_DEFAULTS, type ClientOptions, type ConnectOptions } from './options.js';
export type { HttpDispatcher, HttpRequest } from './transport.js';
export {
  NexusApiError,
  SdkUsageError,
  SDK_ERROR_MESSAGES,
  SDK_USAGE_MESSAGES,
  type RequestOutcome,
  type RequestTarget,
  type SdkErrorCode,
  type SdkUsageCode,
} from './errors.js';
/** The parts of `NexusApiError`: each URL tried without an answer and why, and the store failure named. */
export type { FailedAttempt, Failure, FailureClass } from './failure.js';
export type { StoreFailureKind } from '../protocol/curve-free.js';
/** The environment `connect({ env })` and `nexusUrlsFromEnv` read. */
export type { Env } from './roles.js';
export { DEFAULT_NEXUS_URL, parseNexusUrls, nexusUrlsFromEnv, type NexusUrl } from './urls.js';
export { PERMISSIONS } from '../protocol/curve-free.js';
export * from './types.js';

/** What `NexusClient.connect()` rejects with when it cannot get an SVID (no agent, none answered in time, a bad answer). */
export { WorkloadApiError, type WorkloadApiErrorCode } from '../spiffe/index.js';
/** Your own Workload API source and server check for `connect({ source, authorizeServer })`. */
export {
  WorkloadX509Source, authorizeIf, type Authorizer, type SpiffeId, type WorkloadX509SourceOptions, type X509Source,
  type TrustDomain, type X509Bundle, type X509BundleSet, type X509BundleSource, type X509Svid, type X509SvidSource,
} from '../spiffe/index.js';
export { type AcceptRollbackResult } from './rollback.js';
export { type ReshareResult, type SharingResult } from './sharing.js';
export { SecretCache, createSecretCache, type SecretCacheOptions, type SecretReader } from './secret-cache.js';
export { watchSecret, type SecretWatch, type WatchSecretOptions } from './secret-watch.js';
export { DEFAULT_LIST_PAGE, type ListSecretsOptions, type SecretPage } from './list.js';
