/**
 * The wire contract of every Nexus and Keeper route (api.md §3–§10): paths, `action` values,
 * request schemas (with the inferred request types), response types in Go field order, and the
 * zero-valued error shapes of api.md §1.3. Additive fields (D1) are marked "additive"; SPIKE
 * clients ignore them and never send them.
 *
 * Field names are SPIKE's exactly, including the `spiffiedPattern` typo in policy read
 * responses and the Keeper shard response's capitalised `Err`.
 * Encoding goes through {@link goJson}: `Buffer` = Go `[]byte` (base64), {@link Bytes32} = Go
 * `[32]byte` (array of numbers), {@link GoTime} = Go `time.Time`, `Map` = Go map.
 */
import { type GoJsonValue, Bytes32, GoTime } from '../api/gojson.js';
import { type Infer, s } from '../api/schema.js';
import {
  MAX_PATH_LENGTH,
  validateKeyName,
  validatePolicyName,
  validateSecretPath,
} from './validate.js';

export { Bytes32, GoTime };
export { goJson, goJsonString } from '../api/gojson.js';

// ---------------------------------------------------------------------------------------------
// Routes

export const PATHS = {
  secrets: '/v1/store/secrets',
  secretsMetadata: '/v1/store/secrets/metadata',
  policy: '/v1/acl/policy',
  encrypt: '/v1/cipher/encrypt',
  decrypt: '/v1/cipher/decrypt',
  recover: '/v1/operator/recover',
  restore: '/v1/operator/restore',
  verify: '/v1/bootstrap/verify',
  keeperContribute: '/v1/store/contribute',
  keeperShard: '/v1/store/shard',
} as const;

export const ACTIONS = {
  default: '',
  get: 'get',
  delete: 'delete',
  undelete: 'undelete',
  list: 'list',
  /** additive: permanently wipe versions */
  destroy: 'destroy',
} as const;

/** Content type that selects the cipher stream mode (exact match, api.md §7). */
export const OCTET_STREAM = 'application/octet-stream';

// ---------------------------------------------------------------------------------------------
// Limits used by the schemas (additive bounds; SPIKE has none)

export const LIMITS = {
  /** entries in `values` (the JSON member cap is 1,000 as well) */
  maxValues: 1000,
  /** versions listed in one delete/undelete/destroy (SEC-10) */
  maxVersionsPerCall: 100,
  /** additive per-secret max versions */
  maxMaxVersions: 10_000,
  maxCustomMetadata: 64,
  maxCustomMetadataValue: 1024,
  /** nonce size of AES-GCM */
  nonceBytes: 12,
} as const;

// ---------------------------------------------------------------------------------------------
// Field schemas

const secretPath = () => s.string({ maxLength: MAX_PATH_LENGTH, check: validateSecretPath });
const version = () => s.int({ min: 0 });
const versionList = () =>
  s.optional(s.nullable(s.array(version(), { maxItems: LIMITS.maxVersionsPerCall }), [] as number[]), [] as number[]);
const policyName = () => s.string({ check: validatePolicyName });

// ---------------------------------------------------------------------------------------------
// Secrets

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
export type SecretPutResponse = { err?: string };

/** `?action=get` — version 0/absent = current. */
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

/** `?action=list` — `{}`. */
export const SecretListRequest = s.empty();
export type SecretListRequest = Infer<typeof SecretListRequest>;
export type SecretListResponse = { keys: readonly string[] | null; err?: string };

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

// ---------------------------------------------------------------------------------------------
// Policies

/** `POST /v1/acl/policy` — upsert. Pattern/permission rules run in the policy engine's compile. */
export const PolicyPutRequest = s.object({
  name: policyName(),
  spiffeidPattern: s.string(),
  pathPattern: s.string(),
  permissions: s.array(s.string(), { maxItems: 16 }),
});
export type PolicyPutRequest = Infer<typeof PolicyPutRequest>;
export type PolicyPutResponse = { id?: string; err?: string };

/** `?action=get` / `?action=delete` — `id` carries the policy **name**. */
export const PolicyByIdRequest = s.object({ id: policyName() });
export type PolicyByIdRequest = Infer<typeof PolicyByIdRequest>;
export const PolicyGetRequest = PolicyByIdRequest;
export type PolicyGetRequest = PolicyByIdRequest;
export const PolicyDeleteRequest = PolicyByIdRequest;
export type PolicyDeleteRequest = PolicyByIdRequest;

export type PolicyGetResponse = {
  id: string;
  name: string;
  spiffiedPattern: string;
  pathPattern: string;
  permissions: readonly string[] | null;
  createdAt: GoTime;
  updatedAt: GoTime;
  err?: string;
};

/** `?action=list` — exact-string filters (never compiled as regexes, POL-13). */
export const PolicyListRequest = s.object({
  spiffeidPattern: s.optional(s.string(), ''),
  pathPattern: s.optional(s.string(), ''),
});
export type PolicyListRequest = Infer<typeof PolicyListRequest>;
export type PolicyListItem = { id: string; name: string };
export type PolicyListResponse = { policies: readonly PolicyListItem[] | null; err?: string };

// ---------------------------------------------------------------------------------------------
// Cipher (JSON mode; the stream mode has no JSON body)

export const CipherEncryptRequest = s.object({
  plaintext: s.optional(s.nullable(s.base64(), Buffer.alloc(0)), Buffer.alloc(0)),
  algorithm: s.optional(s.string(), ''),
});
export type CipherEncryptRequest = Infer<typeof CipherEncryptRequest>;
export type CipherEncryptResponse = {
  version: number;
  nonce: Uint8Array | null;
  ciphertext: Uint8Array | null;
  err?: string;
};

export const CipherDecryptRequest = s.object({
  version: s.optional(s.int({ min: 0, max: 255 }), 0),
  nonce: s.optional(s.nullable(s.base64(), Buffer.alloc(0)), Buffer.alloc(0)),
  ciphertext: s.optional(s.nullable(s.base64(), Buffer.alloc(0)), Buffer.alloc(0)),
  algorithm: s.optional(s.string(), ''),
});
export type CipherDecryptRequest = Infer<typeof CipherDecryptRequest>;
export type CipherDecryptResponse = { plaintext: Uint8Array | null; err?: string };

// ---------------------------------------------------------------------------------------------
// Operator and bootstrap

export const RecoverRequest = s.empty();
export type RecoverRequest = Infer<typeof RecoverRequest>;
export type RecoverResponse = {
  /** keyed by decimal share id */
  shards: ReadonlyMap<string, Bytes32> | null;
  /** additive: epoch of the shares */
  epoch?: number;
  err?: string;
};

/** Range of `id` is checked by the handler with `validateRestoreId` (configurable max). */
export const RestoreRequest = s.object({
  id: s.int(),
  shard: s.bytes32({ nonZero: true }),
  /** additive */
  epoch: s.optional(s.int({ min: 0 })),
});
export type RestoreRequest = Infer<typeof RestoreRequest>;
export type RestoreResponse = { collected: number; remaining: number; restored: boolean; err?: string };

export const BootstrapVerifyRequest = s.object({
  nonce: s.base64({ exactBytes: LIMITS.nonceBytes }),
  ciphertext: s.base64(),
});
export type BootstrapVerifyRequest = Infer<typeof BootstrapVerifyRequest>;
export type BootstrapVerifyResponse = { hash: string; err?: string };

// ---------------------------------------------------------------------------------------------
// Keeper

export const ShardContributeRequest = s.object({
  shard: s.bytes32({ nonZero: true }),
  /** additive */
  epoch: s.optional(s.int({ min: 0 })),
});
export type ShardContributeRequest = Infer<typeof ShardContributeRequest>;
export type ShardContributeResponse = { err?: string };

export const ShardGetRequest = s.empty();
export type ShardGetRequest = Infer<typeof ShardGetRequest>;
/** Note `Err` (capitalised, never omitted). */
export type ShardGetResponse = { shard: Bytes32 | null; Err: string; epoch?: number };

// ---------------------------------------------------------------------------------------------
// Error shapes (api.md §1.3). `code` is the wire error code.

export type ErrorShape = (code: string) => { readonly [k: string]: GoJsonValue };

export const ERROR_SHAPES = {
  plain: (code: string) => ({ err: code }),
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
  policyGet: (code: string) => ({
    id: '',
    name: '',
    spiffiedPattern: '',
    pathPattern: '',
    permissions: null,
    createdAt: GoTime.ZERO,
    updatedAt: GoTime.ZERO,
    err: code,
  }),
  policyList: (code: string) => ({ policies: null, err: code }),
  encrypt: (code: string) => ({ version: 0, nonce: null, ciphertext: null, err: code }),
  decrypt: (code: string) => ({ plaintext: null, err: code }),
  recover: (code: string) => ({ shards: null, err: code }),
  restore: (code: string) => ({ collected: 0, remaining: 0, restored: false, err: code }),
  verify: (code: string) => ({ hash: '', err: code }),
  keeperShard: (code: string) => ({ shard: null, Err: code }),
} as const satisfies Record<string, ErrorShape>;

// ---------------------------------------------------------------------------------------------
// Success builders (Go field order)

/** Policy read response from a stored policy (store field names; `Date` or {@link GoTime}). */
export function policyGetResponse(p: {
  name: string;
  spiffeIdPattern: string;
  pathPattern: string;
  permissions: readonly string[];
  createdAt: GoTime | Date;
  updatedAt: GoTime | Date;
}): PolicyGetResponse {
  const t = (x: GoTime | Date): GoTime => (x instanceof Date ? GoTime.fromDate(x) : x);
  return {
    id: '',
    name: p.name,
    spiffiedPattern: p.spiffeIdPattern,
    pathPattern: p.pathPattern,
    permissions: p.permissions,
    createdAt: t(p.createdAt),
    updatedAt: t(p.updatedAt),
  };
}

export function policyListResponse(names: readonly string[]): PolicyListResponse {
  return { policies: names.map((name) => ({ id: '', name })) };
}

/** Builds Go's `map[int]…` JSON object form (decimal string keys). */
export function intKeyedMap<V>(entries: Iterable<readonly [number, V]>): Map<string, V> {
  const m = new Map<string, V>();
  for (const [k, v] of entries) m.set(String(k), v);
  return m;
}
