/**
 * Request and response shapes of the SPIKE Nexus v1 API as the SDK sees them (api.md §5–§8),
 * plus the additive fields of this project (check-and-set, destroy, custom metadata,
 * per-secret max versions, the commitments route).
 *
 * The functions here turn a parsed JSON response into a typed value and throw
 * `NexusApiError('data_unmarshal_failure')` when the shape is wrong; maps are returned as
 * null-prototype objects so a key such as `__proto__` stays an ordinary key.
 *
 * NOTE for de-duplication: `src/protocol/secrets.ts` (server side) defines the same shapes; once it
 * exists the request types here may be re-exported from there.
 */
import { NexusApiError } from './errors.js';

/** Route paths (api.md §3) and this project's additive route. */
export const ROUTES = {
  secrets: '/v1/store/secrets',
  secretMetadata: '/v1/store/secrets/metadata',
  policy: '/v1/acl/policy',
  encrypt: '/v1/cipher/encrypt',
  decrypt: '/v1/cipher/decrypt',
  recover: '/v1/operator/recover',
  restore: '/v1/operator/restore',
  commitments: '/v1/operator/commitments',
} as const;

export type Permission = 'read' | 'write' | 'list' | 'execute' | 'super';
export const PERMISSIONS: readonly Permission[] = ['read', 'write', 'list', 'execute', 'super'];

/** A secret's key/value map (null-prototype object). */
export type SecretValues = Record<string, string>;

export interface PutSecretOptions {
  /** Check-and-set: the write succeeds only if the secret's current version equals `cas` (0 = must not exist). Mismatch → `api_conflict`. */
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

export interface PolicyListItem {
  id: string;
  name: string;
}

export interface PolicyFilter {
  /** Exact-match filter on the SPIFFE ID pattern (wins over pathPattern, as in SPIKE). */
  spiffeIdPattern?: string;
  /** Exact-match filter on the path pattern. */
  pathPattern?: string;
}

/** JSON-mode cipher text (api.md §7.1). */
export interface CipherText {
  version: number;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

/** One recovery share: SPIKE's `(id, 32-byte value)`. The holder wipes `value` after use. */
export interface Share {
  id: number;
  value: Uint8Array;
}

export interface RestoreStatus {
  collected: number;
  remaining: number;
  restored: boolean;
}

/** Public Feldman commitments served by `POST /v1/operator/commitments` (additive route). */
export interface CommitmentsInfo {
  /** Encoded commitments as `src/crypto` `Commitments.fromBytes` reads them. */
  commitments: Uint8Array;
  threshold: number;
  shares: number;
  epoch: number;
}

// ---------------------------------------------------------------------------------------------
// Response decoding helpers
// ---------------------------------------------------------------------------------------------

function bad(): never {
  throw new NexusApiError('data_unmarshal_failure', { status: 200 });
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(o: Record<string, unknown>, k: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
}

function nonNegInt(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad();
  return v;
}

function str(v: unknown): string {
  if (typeof v !== 'string') bad();
  return v;
}

/** `{string: string}` (or null/absent → empty) as a null-prototype object. */
export function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (v === null || v === undefined) return out;
  if (!isObject(v)) bad();
  for (const k of Object.keys(v)) {
    const val = v[k];
    if (typeof val !== 'string') bad();
    Object.defineProperty(out, k, { value: val, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Base64 (standard, padded, as Go encodes `[]byte`) → bytes; null → empty. */
export function base64Bytes(v: unknown): Uint8Array {
  if (v === null || v === undefined) return new Uint8Array(0);
  const s = str(v);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) bad();
  return new Uint8Array(Buffer.from(s, 'base64'));
}

export function decodeGetSecret(body: Record<string, unknown>): SecretValues {
  return stringMap(own(body, 'data'));
}

export function decodeListSecrets(body: Record<string, unknown>): string[] {
  const keys = own(body, 'keys');
  if (keys === null || keys === undefined) return [];
  if (!Array.isArray(keys)) bad();
  return keys.map(str);
}

function timeOrNull(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return str(v);
}

export function decodeMetadata(body: Record<string, unknown>): SecretMetadata {
  const versionsRaw = own(body, 'versions');
  const versions: Record<string, SecretVersionInfo> = Object.create(null) as Record<string, SecretVersionInfo>;
  if (versionsRaw !== null && versionsRaw !== undefined) {
    if (!isObject(versionsRaw)) bad();
    for (const k of Object.keys(versionsRaw)) {
      if (!/^(0|[1-9][0-9]{0,15})$/.test(k)) bad();
      const e = versionsRaw[k];
      if (!isObject(e)) bad();
      Object.defineProperty(versions, k, {
        value: {
          version: nonNegInt(own(e, 'version') ?? 0),
          createdTime: str(own(e, 'createdTime')),
          deletedTime: timeOrNull(own(e, 'deletedTime')),
        },
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  const m = own(body, 'metadata');
  if (!isObject(m)) bad();
  const metadata: SecretMetadataContent = {
    currentVersion: nonNegInt(own(m, 'currentVersion')),
    oldestVersion: nonNegInt(own(m, 'oldestVersion')),
    createdTime: str(own(m, 'createdTime')),
    updatedTime: str(own(m, 'updatedTime')),
    maxVersions: nonNegInt(own(m, 'maxVersions')),
  };
  const cm = own(m, 'customMetadata');
  if (cm !== undefined && cm !== null) metadata.customMetadata = stringMap(cm);
  return { versions, metadata };
}

function permissionList(v: unknown): Permission[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) bad();
  return v.map((p) => {
    if (typeof p !== 'string' || !(PERMISSIONS as readonly string[]).includes(p)) bad();
    return p as Permission;
  });
}

export function decodePolicy(body: Record<string, unknown>): Policy {
  // SPIKE answers `spiffiedPattern` (sic); accept the corrected spelling too.
  const sp = own(body, 'spiffiedPattern') ?? own(body, 'spiffeidPattern');
  return {
    id: typeof own(body, 'id') === 'string' ? (own(body, 'id') as string) : '',
    name: str(own(body, 'name')),
    spiffeIdPattern: str(sp),
    pathPattern: str(own(body, 'pathPattern')),
    permissions: permissionList(own(body, 'permissions')),
    createdAt: str(own(body, 'createdAt')),
    updatedAt: str(own(body, 'updatedAt')),
  };
}

export function decodePolicyList(body: Record<string, unknown>): PolicyListItem[] {
  const ps = own(body, 'policies');
  if (ps === null || ps === undefined) return [];
  if (!Array.isArray(ps)) bad();
  return ps.map((p) => {
    if (!isObject(p)) bad();
    const id = own(p, 'id');
    return { id: typeof id === 'string' ? id : '', name: str(own(p, 'name')) };
  });
}

export function decodeCipherText(body: Record<string, unknown>): CipherText {
  const version = nonNegInt(own(body, 'version'));
  if (version > 255) bad();
  return { version, nonce: base64Bytes(own(body, 'nonce')), ciphertext: base64Bytes(own(body, 'ciphertext')) };
}

export function decodePlaintext(body: Record<string, unknown>): Uint8Array {
  return base64Bytes(own(body, 'plaintext'));
}

export function decodeRestoreStatus(body: Record<string, unknown>): RestoreStatus {
  const restored = own(body, 'restored');
  if (typeof restored !== 'boolean') bad();
  return { collected: nonNegInt(own(body, 'collected')), remaining: nonNegInt(own(body, 'remaining')), restored };
}

export function decodeCommitments(body: Record<string, unknown>): CommitmentsInfo {
  const commitments = base64Bytes(own(body, 'commitments'));
  if (commitments.length === 0) bad();
  return {
    commitments,
    threshold: nonNegInt(own(body, 'threshold')),
    shares: nonNegInt(own(body, 'shares')),
    epoch: nonNegInt(own(body, 'epoch')),
  };
}
