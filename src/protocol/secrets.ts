/**
 * The secrets routes (`/v1/store/secrets`, `/v1/store/secrets/metadata`): request schemas
 * (with the inferred request types), response types in Go field order and their zero-valued
 * error shapes. Additive fields (D1) are marked "additive"; SPIKE clients ignore them and
 * never send them.
 *
 * Response encoding goes through `goJson`: {@link GoTime} = Go `time.Time`, `Map` = Go map.
 */
import { GoTime, type Infer, s } from '../http/index.js';
import { LIMITS, MAX_PATH_LENGTH } from './limits.js';
import { validateKeyName, validateSecretPath } from './validate.js';

const secretPath = () => s.string({ maxLength: MAX_PATH_LENGTH, check: validateSecretPath });
const version = () => s.int({ min: 0 });
const versionList = () =>
  s.optional(s.nullable(s.array(version(), { maxItems: LIMITS.maxVersionsPerCall }), [] as number[]), [] as number[]);

/** `POST /v1/store/secrets` — put. `cas`, `customMetadata`, `maxVersions` are additive. */
export const SecretPutRequest = s.object({
  path: secretPath(),
  values: s.record(s.string(), { maxEntries: LIMITS.maxValues, key: validateKeyName }),
  /** additive: expected current version (0 = must not exist); mismatch → 409 */
  cas: s.optional(s.int({ min: 0 })),
  /** additive */
  customMetadata: s.optional(
    s.record(s.string({ maxLength: LIMITS.maxCustomMetadataValue }), {
      maxEntries: LIMITS.maxCustomMetadata,
      key: validateKeyName,
    }),
  ),
  /** additive: per-secret max versions */
  maxVersions: s.optional(s.int({ min: 1, max: LIMITS.maxMaxVersions })),
});
export type SecretPutRequest = Infer<typeof SecretPutRequest>;
/** `version` (additive): the version written. */
export type SecretPutResponse = { version?: number; err?: string };

/** `?action=get` — version 0/absent = current. */
/** additive: `POST /v1/audit/hash` → the path's HMAC as written in the audit trail. */
export const AuditHashRequest = s.object({ path: secretPath() });
export type AuditHashRequest = Infer<typeof AuditHashRequest>;
export type AuditHashResponse = { hash: string; err?: string };

export const SecretGetRequest = s.object({ path: secretPath(), version: s.optional(version(), 0) });
export type SecretGetRequest = Infer<typeof SecretGetRequest>;
export type SecretGetResponse = { data: ReadonlyMap<string, string> | null; err?: string };

/** `?action=delete` / `?action=undelete` / additive `?action=destroy`. Null/absent = []. */
export const SecretVersionsRequest = s.object({ path: secretPath(), versions: versionList() });
export type SecretVersionsRequest = Infer<typeof SecretVersionsRequest>;
export const SecretDeleteRequest = SecretVersionsRequest;
export type SecretDeleteRequest = SecretVersionsRequest;
export const SecretUndeleteRequest = SecretVersionsRequest;
export type SecretUndeleteRequest = SecretVersionsRequest;
export const SecretDestroyRequest = SecretVersionsRequest;
export type SecretDestroyRequest = SecretVersionsRequest;

/**
 * `?action=list` — SPIKE sends `{}` (every path the caller may see). Additive: `prefix`
 * (plain code-unit prefix), `limit` (a page of at most that many keys) and `after` (only
 * keys sorting after it: the previous page's `next`).
 */
export const SecretListRequest = s.object({
  /** additive */
  prefix: s.optional(s.string({ maxLength: MAX_PATH_LENGTH }), ''),
  /** additive; absent = every key (SPIKE's behaviour) */
  limit: s.optional(s.int({ min: 1, max: LIMITS.maxListPage })),
  /** additive */
  after: s.optional(s.string({ maxLength: MAX_PATH_LENGTH })),
});
export type SecretListRequest = Infer<typeof SecretListRequest>;
/** `next` (additive, omitted when absent): the last key of a page that more keys follow. */
export type SecretListResponse = { keys: readonly string[] | null; next?: string; err?: string };

/** `POST /v1/store/secrets/metadata?action=get`. */
export const SecretMetadataRequest = SecretGetRequest;
export type SecretMetadataRequest = SecretGetRequest;

export type SecretVersionInfo = {
  createdTime: GoTime;
  version: number;
  deletedTime: GoTime | null;
};
export type SecretMetaDataContent = {
  currentVersion: number;
  oldestVersion: number;
  createdTime: GoTime;
  updatedTime: GoTime;
  maxVersions: number;
  /** additive (omitted when undefined) */
  customMetadata?: ReadonlyMap<string, string>;
};
export type SecretMetadataResponse = {
  /** keyed by decimal version number; omitted when empty (Go omitempty) */
  versions?: ReadonlyMap<string, SecretVersionInfo>;
  metadata: SecretMetaDataContent;
  err?: string;
};

/** Zero-valued error bodies of the secrets routes (`code` is the wire error code). */
export const SECRET_ERROR_SHAPES = {
  secretGet: (code: string) => ({ data: null, err: code }),
  secretList: (code: string) => ({ keys: null, err: code }),
  secretMetadata: (code: string) => ({
    metadata: {
      currentVersion: 0,
      oldestVersion: 0,
      createdTime: GoTime.ZERO,
      updatedTime: GoTime.ZERO,
      maxVersions: 0,
    },
    err: code,
  }),
} as const;
