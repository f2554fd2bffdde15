/** Public surface of the Node SDK for SPIKE Nexus. */
export { NexusClient, CLIENT_DEFAULTS, type ClientOptions, type VersionOption } from './client.js';
export type { ConnectOptions } from './connect.js';
export {
  NexusApiError,
  SdkUsageError,
  SDK_ERROR_MESSAGES,
  SDK_USAGE_MESSAGES,
  codeForStatus,
  type SdkErrorCode,
  type SdkUsageCode,
} from './errors.js';
export { clientRoles, type ClientRoles, type IdPredicate, type Env } from './roles.js';
export { DEFAULT_NEXUS_URL, parseNexusUrls, nexusUrlsFromEnv, type NexusUrl } from './urls.js';
export { SHARD_LENGTH, isAllZero } from './shares.js';
export * from './decode.js';
