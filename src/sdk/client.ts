/**
 * `NexusClient`: the typed Node client for every SPIKE Nexus route (SPIKE's routes plus this
 * project's additive fields and the commitments route). Paths, `action` values and request
 * field names come from `src/protocol/`.
 *
 * One instance holds one keep-alive `Dispatcher` (mTLS with the caller's SVID, the server
 * authorised by `isNexus`, when built with {@link NexusClient.connect}) shared by all calls,
 * and one or more Nexus URLs with fail-over for idempotent calls (see `transport.ts`).
 * Requests are exactly SPIKE's: `POST`, the `action` query, SPIKE's JSON field names,
 * `[]byte` as base64 and shards as arrays of 32 integers. Every failure is a
 * `NexusApiError` (or `SdkUsageError` for bad arguments, before anything is sent). Every call
 * takes `{ signal }` (an `AbortSignal`) as its last argument; an aborted call rejects with the
 * signal's reason (see `CallOptions`).
 *
 * Key material: `recover()` returns shares in fresh `Uint8Array`s the caller must wipe;
 * `restore()` encodes the shard straight into a byte buffer that is zeroed after sending.
 */
import type { Readable } from 'node:stream';
import {
  ACTIONS,
  PATHS,
  formatRestoreBody,
  isPermission,
  type CipherDecryptRequest,
  type CipherEncryptRequest,
  type PolicyByIdRequest,
  type PolicyListRequest,
  type PolicyPutRequest,
  type RequestJson,
  type SecretGetRequest,
  type SecretPutRequest,
  type SecretVersionsRequest,
} from '../protocol/curve-free.js';
import { b64, checkPath, checkStringMap, checkVersion, checkVersions, cipherBody, versionedPath } from './args.js';
import { verifyAuditLines } from './audit-verify.js';
import { decodeAcceptRollback, type AcceptRollbackResult } from './rollback.js';
import { decodeReshare, decodeSharingResult, type ReshareResult, type SharingResult } from './sharing.js';
import {
  decodeCipherText,
  decodeCommitments,
  decodeGetSecret,
  decodeMetadata,
  decodePlaintext,
  decodePolicy,
  decodePolicyList,
  decodeRestoreStatus,
  decodeRotation,
  isObject,
} from './decode.js';
import { SdkUsageError } from './errors.js';
import type { ClientOptions, ConnectOptions } from './options.js';
import { assertValidShare, recoverAnswerShares } from './shares.js';
import { NexusClientCore } from './core.js';
import { decodeSecretPage, eachSecretPath, listRequest, type ListSecretsOptions, type SecretPage } from './list.js';
import type {
  CallOptions,
  CipherText,
  CommitmentsInfo,
  Policy,
  PolicyFilter,
  PolicyListItem,
  PolicySpec,
  PutSecretOptions,
  RestoreStatus,
  RootKeyRotation,
  SecretMetadata,
  SecretValues,
  Share,
  VersionOption,
} from './types.js';

export class NexusClient extends NexusClientCore {
  private constructor(opts: ClientOptions) {
    super(opts);
  }

  /** A client over a dispatcher you provide (custom TLS, tests). */
  static create(opts: ClientOptions): NexusClient {
    return new NexusClient(opts);
  }

  /**
   * Connects the usual way: X.509 source from the Workload API (`SPIFFE_ENDPOINT_SOCKET`)
   * unless one is given, one keep-alive mTLS dispatcher that accepts only a server whose
   * SPIFFE ID satisfies `isNexus` (`SPIKE_TRUST_ROOT_NEXUS`), URLs from
   * `SPIKE_NEXUS_API_URL` (comma-separated allowed). SVID rotation is picked up from the
   * source on new connections.
   */
  static async connect(opts: ConnectOptions = {}): Promise<NexusClient> {
    const { connectOptions } = await import('./connect.js');
    return new NexusClient(await connectOptions(opts));
  }

  // ----------------------------------------------------------------------------- secrets

  /**
   * Creates a new version of the secret at `path` and resolves with it (`version`, when the
   * server reports it). With `cas`, fails with `api_conflict` unless `cas` equals the path's
   * last written version (metadata `lastVersion`: the highest version ever written, deleted
   * or not; 0 = the path was never written).
   */
  async putSecret(path: string, values: SecretValues, opts: PutSecretOptions = {}): Promise<{ version?: number }> {
    checkPath(path);
    checkStringMap(values, 'values');
    const body: RequestJson<SecretPutRequest> = { path, values };
    if (opts.cas !== undefined) {
      checkVersion(opts.cas);
      body.cas = opts.cas;
    }
    if (opts.maxVersions !== undefined) {
      if (!Number.isSafeInteger(opts.maxVersions) || opts.maxVersions < 1) throw new SdkUsageError('sdk_bad_argument', 'maxVersions must be an integer ≥ 1');
      body.maxVersions = opts.maxVersions;
    }
    if (opts.customMetadata !== undefined) {
      checkStringMap(opts.customMetadata, 'customMetadata');
      body.customMetadata = opts.customMetadata;
    }
    // Never re-sent after it may have been applied, CAS or not: a CAS replay would not add a
    // version, but its 409 would replace "outcome unknown" with a definite-looking failure.
    const r = await this.call(PATHS.secrets, undefined, body, false, opts.signal);
    const version = (r as { version?: unknown } | undefined)?.version;
    return typeof version === 'number' && Number.isSafeInteger(version) && version > 0 ? { version } : {};
  }

  /** Reads a secret's values (current version, or `version`). Missing/deleted → `api_not_found`. */
  async getSecret(path: string, opts: VersionOption = {}): Promise<SecretValues> {
    return decodeGetSecret(await this.call(PATHS.secrets, ACTIONS.get, versionedPath(path, opts), true, opts.signal));
  }

  /** additive: the HMAC `path` has in the audit trail (hex; superuser only). */
  async auditHash(path: string, opts: CallOptions = {}): Promise<string> {
    const r = await this.call(PATHS.auditHash, undefined, { path }, true, opts.signal);
    if (typeof r['hash'] !== 'string') throw new TypeError('malformed audit hash answer');
    return r['hash'];
  }

  /** additive: share refresh (superuser): new Keeper shares, same root key; old recovery shards stop working. */
  async refreshShares(opts: CallOptions = {}): Promise<SharingResult> {
    return decodeSharingResult(await this.callUntilDone(PATHS.refreshShares, opts.signal), 'refresh');
  }

  /**
   * additive: Keeper set / threshold change (superuser) to Nexus's configured Keepers, shares and threshold (same root
   * key). `changed: false`: the stored sharing already matched; otherwise old recovery shards stop working.
   */
  async reshare(opts: CallOptions = {}): Promise<ReshareResult> {
    return decodeReshare(await this.callUntilDone(PATHS.reshare, opts.signal));
  }

  /** additive: the index of the first audit line whose MAC this Nexus does not verify, or null (superuser only; batched). */
  async auditVerify(lines: readonly string[], opts: CallOptions = {}): Promise<number | null> {
    return verifyAuditLines((entries) => this.call(PATHS.auditVerify, undefined, { entries }, true, opts.signal), lines);
  }

  /** Soft-deletes versions (empty list or 0 = current). */
  async deleteSecret(path: string, versions: readonly number[] = [], opts: CallOptions = {}): Promise<void> {
    await this.#versionsCall(ACTIONS.delete, path, versions, opts.signal);
  }

  /** Undeletes versions (empty list = the server's default). */
  async undeleteSecret(path: string, versions: readonly number[] = [], opts: CallOptions = {}): Promise<void> {
    await this.#versionsCall(ACTIONS.undelete, path, versions, opts.signal);
  }

  /** Permanently destroys versions (additive action `destroy`). */
  async destroySecret(path: string, versions: readonly number[] = [], opts: CallOptions = {}): Promise<void> {
    await this.#versionsCall(ACTIONS.destroy, path, versions, opts.signal);
  }

  async #versionsCall(action: string, path: string, versions: readonly number[], signal: AbortSignal | undefined): Promise<void> {
    checkPath(path);
    const body: RequestJson<SecretVersionsRequest> = { path, versions: checkVersions(versions) };
    await this.call(PATHS.secrets, action, body, false, signal);
  }

  /**
   * Paths the caller may see, sorted as the server returns them. Additive options
   * (list.ts): `prefix`, `limit` (then this is one page) and `cursor` (a page's `next`).
   */
  async listSecrets(opts: ListSecretsOptions = {}): Promise<string[]> {
    return (await this.listSecretsPage(opts)).keys;
  }

  /** additive: one page of {@link listSecrets} and the cursor of the next (absent: last page). */
  async listSecretsPage(opts: ListSecretsOptions = {}): Promise<SecretPage> {
    return decodeSecretPage(await this.call(PATHS.secrets, ACTIONS.list, listRequest(opts), true, opts.signal));
  }

  /** additive: every visible path under `prefix`, fetched `pageSize` (default 1000) at a time. */
  secretPaths(opts: { prefix?: string; pageSize?: number } & CallOptions = {}): AsyncGenerator<string, void, undefined> {
    return eachSecretPath((o) => this.listSecretsPage(o), opts);
  }

  /** A secret's metadata and version list. */
  async getSecretMetadata(path: string, opts: VersionOption = {}): Promise<SecretMetadata> {
    return decodeMetadata(await this.call(PATHS.secretsMetadata, ACTIONS.get, versionedPath(path, opts), true, opts.signal));
  }

  // ----------------------------------------------------------------------------- policies

  /** Creates or replaces the policy named `spec.name`. */
  async putPolicy(spec: PolicySpec, opts: CallOptions = {}): Promise<void> {
    if (!isObject(spec)) throw new SdkUsageError('sdk_bad_argument', 'policy spec must be an object');
    for (const k of ['name', 'spiffeIdPattern', 'pathPattern'] as const) {
      if (typeof spec[k] !== 'string') throw new SdkUsageError('sdk_bad_argument', 'policy name and patterns must be strings');
    }
    if (!Array.isArray(spec.permissions) || !spec.permissions.every(isPermission)) {
      throw new SdkUsageError('sdk_bad_argument', 'permissions must be some of read, write, list, execute, super');
    }
    const body: RequestJson<PolicyPutRequest> = {
      name: spec.name,
      spiffeidPattern: spec.spiffeIdPattern,
      pathPattern: spec.pathPattern,
      permissions: [...spec.permissions],
    };
    await this.call(PATHS.policy, undefined, body, false, opts.signal);
  }

  /** Reads a policy by name. Missing → `api_not_found`. */
  async getPolicy(name: string, opts: CallOptions = {}): Promise<Policy> {
    if (typeof name !== 'string') throw new SdkUsageError('sdk_bad_argument', 'policy name must be a string');
    const body: RequestJson<PolicyByIdRequest> = { id: name };
    return decodePolicy(await this.call(PATHS.policy, ACTIONS.get, body, true, opts.signal));
  }

  /** Lists policies, optionally filtered by exact pattern equality. */
  async listPolicies(filter: PolicyFilter = {}): Promise<PolicyListItem[]> {
    const body: RequestJson<PolicyListRequest> = { spiffeidPattern: filter.spiffeIdPattern ?? '', pathPattern: filter.pathPattern ?? '' };
    return decodePolicyList(await this.call(PATHS.policy, ACTIONS.list, body, true, filter.signal));
  }

  /** Deletes a policy by name. Missing → `api_not_found`. */
  async deletePolicy(name: string, opts: CallOptions = {}): Promise<void> {
    if (typeof name !== 'string') throw new SdkUsageError('sdk_bad_argument', 'policy name must be a string');
    const body: RequestJson<PolicyByIdRequest> = { id: name };
    await this.call(PATHS.policy, ACTIONS.delete, body, false, opts.signal);
  }

  // ----------------------------------------------------------------------------- cipher

  /** JSON-mode encryption. Returns version, nonce and ciphertext (all three are needed to decrypt). */
  async encrypt(plaintext: Uint8Array, opts: { algorithm?: string } & CallOptions = {}): Promise<CipherText> {
    const body: RequestJson<CipherEncryptRequest> = { plaintext: b64(plaintext) };
    if (opts.algorithm !== undefined) body.algorithm = opts.algorithm;
    return decodeCipherText(await this.call(PATHS.encrypt, undefined, body, true, opts.signal));
  }

  /** JSON-mode decryption. */
  async decrypt(ct: CipherText, opts: { algorithm?: string } & CallOptions = {}): Promise<Uint8Array> {
    const body = cipherBody(ct);
    if (opts.algorithm !== undefined) body.algorithm = opts.algorithm;
    return decodePlaintext(await this.call(PATHS.decrypt, undefined, body, true, opts.signal));
  }

  /** additive: `ct` re-encrypted under Nexus's current cipher version; the plaintext never leaves Nexus (cipher permission). */
  async rewrap(ct: CipherText, opts: CallOptions = {}): Promise<CipherText> {
    return decodeCipherText(await this.call(PATHS.rewrap, undefined, cipherBody(ct), true, opts.signal));
  }

  /** Stream-mode encryption: resolves with the response stream (`0x01` ‖ nonce ‖ ciphertext‖tag). */
  async encryptStream(plaintext: Readable | Buffer, opts: CallOptions = {}): Promise<Readable> {
    return this.transport.postStream(PATHS.encrypt, plaintext, { ...this.streamTimeouts(), signal: opts.signal });
  }

  /** Stream-mode decryption: resolves with the plaintext stream. */
  async decryptStream(ciphertext: Readable | Buffer, opts: CallOptions = {}): Promise<Readable> {
    return this.transport.postStream(PATHS.decrypt, ciphertext, { ...this.streamTimeouts(), signal: opts.signal });
  }

  // ----------------------------------------------------------------------------- operator

  /**
   * Fetches all recovery shares (recover role only). The caller owns the returned buffers
   * and must wipe them (`share.value.fill(0)`) when done.
   */
  async recover(opts: CallOptions = {}): Promise<Share[]> {
    return recoverAnswerShares(await this.transport.postBytes(PATHS.recover, undefined, Buffer.from('{}'), { idempotent: true, signal: opts.signal }));
  }

  /** Submits one recovery share (restore role only). The share's buffer is left to the caller. */
  async restore(share: Share, opts: CallOptions = {}): Promise<RestoreStatus> {
    assertValidShare(share.id, share.value);
    return decodeRestoreStatus(await this.callBytes(PATHS.restore, undefined, formatRestoreBody(share), false, opts.signal));
  }

  /** additive: accepts a detected state rollback (superuser; docs/key-lifecycle.md). */
  async acceptRollback(opts: CallOptions = {}): Promise<AcceptRollbackResult> {
    return decodeAcceptRollback(await this.call(PATHS.acceptRollback, undefined, {}, false, opts.signal));
  }

  /** additive: rotates the root key (Pilot superuser): the new epoch, storage key id and cipher version. */
  async rotateRootKey(opts: CallOptions = {}): Promise<RootKeyRotation> {
    return decodeRotation(await this.callUntilDone(PATHS.rotateRootKey, opts.signal));
  }

  /** The public Feldman commitments of the current sharing (additive route). */
  async getCommitments(opts: CallOptions = {}): Promise<CommitmentsInfo> {
    return decodeCommitments(await this.call(PATHS.commitments, undefined, {}, true, opts.signal));
  }

  /**
   * Checks a recovery share against the commitments Nexus serves, without submitting it.
   * Resolves `{ ok, info }`; the share's buffer is left to the caller.
   */
  async verifyShard(share: Share, opts: CallOptions = {}): Promise<{ ok: boolean; info: CommitmentsInfo }> {
    assertValidShare(share.id, share.value);
    const info = await this.getCommitments(opts);
    const { verifyShareAgainst } = await import('./verify.js');
    return { ok: verifyShareAgainst(info, share), info };
  }
}
