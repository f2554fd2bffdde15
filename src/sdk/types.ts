/**
 * The values `NexusClient` takes and returns: the SDK's view of SPIKE Nexus requests and
 * answers (wire shapes and field names are in `src/protocol/`). Times are RFC 3339 strings;
 * maps are null-prototype objects so a key such as `__proto__` stays an ordinary key.
 */
import type { Permission, PolicyListItem, RestoreResponse, Share } from '../protocol/curve-free.js';

export type { Permission, PolicyListItem, Share };

/** A secret's key/value map (null-prototype object). */
export type SecretValues = Record<string, string>;

/**
 * Options every `NexusClient` call accepts. `signal` cancels the call: it rejects with
 * `signal.reason` (a `DOMException` named `AbortError` unless you gave another reason), at
 * once if the signal is already aborted (nothing is sent), or mid-request (the connection is
 * dropped, no fail-over to another Nexus).
 */
export interface CallOptions {
  signal?: AbortSignal;
}

export interface PutSecretOptions extends CallOptions {
  /**
   * Check-and-set: the write succeeds only if `cas` equals the path's last written version
   * (metadata `lastVersion`: the highest version ever written, even if since deleted or
   * destroyed; 0 = the path was never written). Mismatch → `api_conflict`.
   */
  cas?: number;
  /** Versions to keep for this secret (additive; server default otherwise). */
  maxVersions?: number;
  /** Non-secret metadata stored beside the secret (additive). */
  customMetadata?: Record<string, string>;
}

export interface SecretVersionInfo {
  version: number;
  /** RFC 3339 */
  createdTime: string;
  /** RFC 3339, or null when the version is live */
  deletedTime: string | null;
}

export interface SecretMetadataContent {
  currentVersion: number;
  oldestVersion: number;
  createdTime: string;
  updatedTime: string;
  maxVersions: number;
  /** Present when the server supports custom metadata and the secret has some. */
  customMetadata?: Record<string, string>;
}

export interface SecretMetadata {
  /** Keyed by decimal version number (null-prototype object). */
  versions: Record<string, SecretVersionInfo>;
  metadata: SecretMetadataContent;
}

export interface PolicySpec {
  name: string;
  spiffeIdPattern: string;
  pathPattern: string;
  permissions: Permission[];
}

export interface Policy extends PolicySpec {
  id: string;
  /** RFC 3339 */
  createdAt: string;
  /** RFC 3339 */
  updatedAt: string;
}

export interface PolicyFilter extends CallOptions {
  /** Exact-match filter on the SPIFFE ID pattern (wins over pathPattern, as in SPIKE). */
  spiffeIdPattern?: string;
  /** Exact-match filter on the path pattern. */
  pathPattern?: string;
}

/** JSON-mode cipher text. */
export interface CipherText {
  version: number;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

/** What `rotateRootKey` answers: the new sharing epoch, the storage key id and cipher version now in use. */
export interface RootKeyRotation {
  epoch: number;
  storageKeyId: number;
  cipherVersion: number;
}

/** Progress of a restore: `collected` of the threshold, `remaining` to go, `restored` at the end. */
export type RestoreStatus = Omit<RestoreResponse, 'err'>;

/** Public Feldman commitments served by `POST /v1/operator/commitments` (additive route). */
export interface CommitmentsInfo {
  /** Encoded commitments as `src/crypto` `Commitments.fromBytes` reads them. */
  commitments: Uint8Array;
  threshold: number;
  shares: number;
  epoch: number;
}

export interface VersionOption extends CallOptions {
  /** 0 or absent = current version. */
  version?: number;
}
