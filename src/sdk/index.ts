/** Public surface of the Node SDK for SPIKE Nexus. */
import { PATHS } from '../protocol/curve-free.js';

export { NexusClient } from './client.js';
export { CLIENT_DEFAULTS, type ClientOptions, type ConnectOptions } from './options.js';
export type { HttpDispatcher, HttpRequest } from './transport.js';
export {
  NexusApiError,
  SdkUsageError,
  SDK_ERROR_MESSAGES,
  SDK_USAGE_MESSAGES,
  codeForStatus,
  type RequestOutcome,
  type SdkErrorCode,
  type SdkUsageCode,
} from './errors.js';
export { clientRoles, type ClientRoles, type IdPredicate, type Env } from './roles.js';
export { DEFAULT_NEXUS_URL, parseNexusUrls, nexusUrlsFromEnv, type NexusUrl } from './urls.js';
export { SHARD_LENGTH, isAllZero } from './shares.js';
export { PERMISSIONS } from '../protocol/curve-free.js';
export * from './types.js';
export * from './decode.js';

/** The Nexus paths `NexusClient` calls (values from the protocol's path table). */
export const ROUTES = {
  secrets: PATHS.secrets,
  secretMetadata: PATHS.secretsMetadata,
  policy: PATHS.policy,
  encrypt: PATHS.encrypt,
  decrypt: PATHS.decrypt,
  rewrap: PATHS.rewrap,
  recover: PATHS.recover,
  restore: PATHS.restore,
  commitments: PATHS.commitments,
} as const;
export { failureText } from './failure.js';
/** What `NexusClient.connect()` rejects with when it cannot get an SVID (no agent, none answered in time, a bad answer). */
export { WorkloadApiError, type WorkloadApiErrorCode } from '../spiffe/index.js';
/** Your own Workload API source and server check for `connect({ source, authorizeServer })`. */
export {
  WorkloadX509Source, authorizeIf, type Authorizer, type SpiffeId, type WorkloadX509SourceOptions, type X509Source,
} from '../spiffe/index.js';
export { type AcceptRollbackResult } from './rollback.js';
export { type ReshareResult, type SharingResult } from './sharing.js';
export { SecretCache, createSecretCache, type SecretCacheOptions, type SecretReader } from './secret-cache.js';
export { watchSecret, type SecretWatch, type WatchSecretOptions } from './secret-watch.js';
export { DEFAULT_LIST_PAGE, type ListSecretsOptions, type SecretPage } from './list.js';
