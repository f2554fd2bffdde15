/**
 * Checks of a caller's arguments, run before anything is sent: a bad argument is an
 * `SdkUsageError('sdk_bad_argument')` with a fixed phrase, never the value.
 */
import type { CipherDecryptRequest, RequestJson, SecretGetRequest } from '../protocol/curve-free.js';
import { isObject } from './decode.js';
import { SdkUsageError } from './errors.js';
import type { CipherText, VersionOption } from './types.js';

export function checkVersion(v: number | undefined): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) {
    throw new SdkUsageError('sdk_bad_argument', 'version numbers must be integers ≥ 0');
  }
}

/** A copy of `vs` after checking every entry. */
export function checkVersions(vs: readonly number[]): number[] {
  if (!Array.isArray(vs)) throw new SdkUsageError('sdk_bad_argument', 'versions must be an array');
  for (const v of vs) checkVersion(v);
  return [...vs];
}

/** `retryUnavailableMs` of the client options: a finite number of ms ≥ 0, or not given. */
export function checkRetryUnavailableMs(ms: number | undefined): void {
  if (ms !== undefined && !(typeof ms === 'number' && Number.isFinite(ms) && ms >= 0)) {
    throw new SdkUsageError('sdk_bad_argument', 'retryUnavailableMs must be a number of ms ≥ 0');
  }
}

export function checkPath(path: string): void {
  if (typeof path !== 'string' || path.length === 0) throw new SdkUsageError('sdk_bad_argument', 'path must be a non-empty string');
}

export function checkStringMap(m: Record<string, string>, what: string): void {
  if (!isObject(m)) throw new SdkUsageError('sdk_bad_argument', `${what} must be an object of strings`);
  for (const k of Object.keys(m)) {
    if (typeof m[k] !== 'string') throw new SdkUsageError('sdk_bad_argument', `${what} must be an object of strings`);
  }
}

export function b64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/** The decrypt/rewrap request of `ct` (version checked). */
export function cipherBody(ct: CipherText): RequestJson<CipherDecryptRequest> {
  if (!Number.isInteger(ct.version) || ct.version < 0 || ct.version > 255) throw new SdkUsageError('sdk_bad_argument', 'version must be 0-255');
  return { version: ct.version, nonce: b64(ct.nonce), ciphertext: b64(ct.ciphertext) };
}

/** `{path, version?}` of a secret or metadata read, after checking both. */
export function versionedPath(path: string, opts: VersionOption): RequestJson<SecretGetRequest> {
  checkPath(path);
  checkVersion(opts.version);
  const body: RequestJson<SecretGetRequest> = { path };
  if (opts.version !== undefined) body.version = opts.version;
  return body;
}
