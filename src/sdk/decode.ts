/**
 * Turns a parsed JSON answer of SPIKE Nexus into the SDK's values (`types.ts`). Field names
 * are checked at compile time against the protocol's response types, so a wire rename cannot
 * leave the SDK behind. A wrong shape throws `NexusApiError('data_unmarshal_failure')`; maps
 * are returned as null-prototype objects so a key such as `__proto__` stays an ordinary key.
 */
import {
  isPermission,
  type CipherDecryptResponse,
  type CipherEncryptResponse,
  type CommitmentsResponse,
  type Permission,
  type PolicyGetResponse,
  type PolicyListItem,
  type PolicyListResponse,
  type PolicyPutRequest,
  type RestoreResponse,
  type SecretGetResponse,
  type SecretListResponse,
  type SecretMetaDataContent,
  type SecretMetadataResponse,
  type SecretVersionInfo as WireVersionInfo,
} from '../protocol/curve-free.js';
import { NexusApiError, codeForBodyErr, sanitizeWireCode } from './errors.js';
import type {
  CipherText,
  CommitmentsInfo,
  Policy,
  RestoreStatus,
  RootKeyRotation,
  SecretMetadata,
  SecretMetadataContent,
  SecretValues,
  SecretVersionInfo,
} from './types.js';

function bad(): never {
  throw new NexusApiError('data_unmarshal_failure', { status: 200 });
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Member `key` of response type `R` (own members only). */
function own<R>(o: Record<string, unknown>, key: keyof R & string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
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
  return stringMap(own<SecretGetResponse>(body, 'data'));
}

export function decodeListSecrets(body: Record<string, unknown>): string[] {
  const keys = own<SecretListResponse>(body, 'keys');
  if (keys === null || keys === undefined) return [];
  if (!Array.isArray(keys)) bad();
  return keys.map(str);
}

function timeOrNull(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return str(v);
}

export function decodeMetadata(body: Record<string, unknown>): SecretMetadata {
  const versionsRaw = own<SecretMetadataResponse>(body, 'versions');
  const versions: Record<string, SecretVersionInfo> = Object.create(null) as Record<string, SecretVersionInfo>;
  if (versionsRaw !== null && versionsRaw !== undefined) {
    if (!isObject(versionsRaw)) bad();
    for (const k of Object.keys(versionsRaw)) {
      if (!/^(0|[1-9][0-9]{0,15})$/.test(k)) bad();
      const e = versionsRaw[k];
      if (!isObject(e)) bad();
      Object.defineProperty(versions, k, {
        value: {
          version: nonNegInt(own<WireVersionInfo>(e, 'version') ?? 0),
          createdTime: str(own<WireVersionInfo>(e, 'createdTime')),
          deletedTime: timeOrNull(own<WireVersionInfo>(e, 'deletedTime')),
        },
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  const m = own<SecretMetadataResponse>(body, 'metadata');
  if (!isObject(m)) bad();
  const metadata: SecretMetadataContent = {
    currentVersion: nonNegInt(own<SecretMetaDataContent>(m, 'currentVersion')),
    oldestVersion: nonNegInt(own<SecretMetaDataContent>(m, 'oldestVersion')),
    createdTime: str(own<SecretMetaDataContent>(m, 'createdTime')),
    updatedTime: str(own<SecretMetaDataContent>(m, 'updatedTime')),
    maxVersions: nonNegInt(own<SecretMetaDataContent>(m, 'maxVersions')),
  };
  const cm = own<SecretMetaDataContent>(m, 'customMetadata');
  if (cm !== undefined && cm !== null) metadata.customMetadata = stringMap(cm);
  return { versions, metadata };
}

function permissionList(v: unknown): Permission[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) bad();
  return v.map((p) => {
    if (!isPermission(p)) bad();
    return p;
  });
}

export function decodePolicy(body: Record<string, unknown>): Policy {
  // SPIKE answers `spiffiedPattern` (sic); accept the request's spelling too.
  const sp = own<PolicyGetResponse>(body, 'spiffiedPattern') ?? own<PolicyPutRequest>(body, 'spiffeidPattern');
  const id = own<PolicyGetResponse>(body, 'id');
  return {
    id: typeof id === 'string' ? id : '',
    name: str(own<PolicyGetResponse>(body, 'name')),
    spiffeIdPattern: str(sp),
    pathPattern: str(own<PolicyGetResponse>(body, 'pathPattern')),
    permissions: permissionList(own<PolicyGetResponse>(body, 'permissions')),
    createdAt: str(own<PolicyGetResponse>(body, 'createdAt')),
    updatedAt: str(own<PolicyGetResponse>(body, 'updatedAt')),
  };
}

export function decodePolicyList(body: Record<string, unknown>): PolicyListItem[] {
  const ps = own<PolicyListResponse>(body, 'policies');
  if (ps === null || ps === undefined) return [];
  if (!Array.isArray(ps)) bad();
  return ps.map((p) => {
    if (!isObject(p)) bad();
    const id = own<PolicyListItem>(p, 'id');
    return { id: typeof id === 'string' ? id : '', name: str(own<PolicyListItem>(p, 'name')) };
  });
}

/** The rotate-root-key answer. */
export function decodeRotation(body: Record<string, unknown>): RootKeyRotation {
  return { epoch: nonNegInt(body['epoch']), storageKeyId: nonNegInt(body['storageKeyId']), cipherVersion: nonNegInt(body['cipherVersion']) };
}

export function decodeCipherText(body: Record<string, unknown>): CipherText {
  const version = nonNegInt(own<CipherEncryptResponse>(body, 'version'));
  if (version > 255) bad();
  return {
    version,
    nonce: base64Bytes(own<CipherEncryptResponse>(body, 'nonce')),
    ciphertext: base64Bytes(own<CipherEncryptResponse>(body, 'ciphertext')),
  };
}

export function decodePlaintext(body: Record<string, unknown>): Uint8Array {
  return base64Bytes(own<CipherDecryptResponse>(body, 'plaintext'));
}

export function decodeRestoreStatus(body: Record<string, unknown>): RestoreStatus {
  const restored = own<RestoreResponse>(body, 'restored');
  if (typeof restored !== 'boolean') bad();
  return {
    collected: nonNegInt(own<RestoreResponse>(body, 'collected')),
    remaining: nonNegInt(own<RestoreResponse>(body, 'remaining')),
    restored,
  };
}

export function decodeCommitments(body: Record<string, unknown>): CommitmentsInfo {
  const commitments = base64Bytes(own<CommitmentsResponse>(body, 'commitments'));
  if (commitments.length === 0) bad();
  return {
    commitments,
    threshold: nonNegInt(own<CommitmentsResponse>(body, 'threshold')),
    shares: nonNegInt(own<CommitmentsResponse>(body, 'shares')),
    epoch: nonNegInt(own<CommitmentsResponse>(body, 'epoch')),
  };
}

/**
 * Most JSON values (array elements, members, containers) one answer may hold: a listing of
 * 1,000,000 paths has about that many. A hostile answer of tiny values (`[],[],…`: 21 million
 * arrays in 63 MiB) would otherwise be built whole by `JSON.parse` before its shape is checked
 * (1.6 GB; an abort under a small heap).
 */
const MAX_ANSWER_VALUES = 4_000_000;
/** Answers smaller than this cannot hold more values than the cap (each takes 2 bytes or more). */
const SCAN_FROM_BYTES = 2 * MAX_ANSWER_VALUES;

/** An upper bound of the values in JSON text `raw`: its commas and openings outside strings. */
function jsonValues(raw: Uint8Array): number {
  let n = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (inString) {
      if (b === 0x5c) i++; // a backslash escapes the next byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x2c || b === 0x5b || b === 0x7b) n++;
  }
  return n;
}

/**
 * The parsed JSON object of a 200 answer (`raw` is zeroed), or a typed error: unparsable or
 * not an object → `data_unmarshal_failure`; a non-empty `err` → its code.
 */
export function parseAnswer(raw: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    if (raw.length > SCAN_FROM_BYTES && jsonValues(raw) > MAX_ANSWER_VALUES) throw new Error('too many values');
    parsed = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
  } catch {
    throw new NexusApiError('data_unmarshal_failure', { status: 200 });
  } finally {
    raw.fill(0);
  }
  if (!isObject(parsed)) throw new NexusApiError('data_unmarshal_failure', { status: 200 });
  const err = Object.prototype.hasOwnProperty.call(parsed, 'err') ? parsed['err'] : undefined;
  if (typeof err === 'string' && err !== '') {
    const wireErr = sanitizeWireCode(err);
    throw new NexusApiError(codeForBodyErr(err), { status: 200, ...(wireErr ? { wireErr } : {}) });
  }
  return parsed;
}
