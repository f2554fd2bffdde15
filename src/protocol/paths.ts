/**
 * Every HTTP path of SPIKE Nexus, SPIKE Keeper and the Bootstrap routes, and the `action`
 * query values: the one table that servers register and clients call.
 *
 * All routes are `POST`. A route is selected by the exact raw path plus the `?action=`
 * value (absent = {@link ACTIONS.default}). Paths marked "additive" are this project's own;
 * SPIKE clients never call them.
 */

export const PATHS = {
  // Nexus: secrets
  secrets: '/v1/store/secrets',
  secretsMetadata: '/v1/store/secrets/metadata',
  // Nexus: policies
  policy: '/v1/acl/policy',
  // Nexus: cipher
  encrypt: '/v1/cipher/encrypt',
  decrypt: '/v1/cipher/decrypt',
  /** additive: re-encrypts a ciphertext under the current cipher key version (decrypt's request, encrypt's answer) */
  rewrap: '/v1/cipher/rewrap',
  // Nexus: operator (break-the-glass)
  recover: '/v1/operator/recover',
  restore: '/v1/operator/restore',
  /** additive: public Feldman commitments of the current sharing */
  commitments: '/v1/operator/commitments',
  /** additive: accept a detected state rollback and re-anchor the store (superuser) */
  acceptRollback: '/v1/operator/accept-rollback',
  /** additive: proactive share refresh, a two-phase sharing move (superuser; docs/key-lifecycle.md) */
  refreshShares: '/v1/operator/refresh-shares',
  /** additive: move the sharing to this Nexus's configured Keepers, shares and threshold (superuser; docs/key-lifecycle.md) */
  reshare: '/v1/operator/reshare',
  // Nexus: bootstrap-facing
  verify: '/v1/bootstrap/verify',
  /** additive: whether the store already holds a key (Bootstrap's run-once check) */
  bootstrapStatus: '/v1/bootstrap/status',
  /** additive: rotate the root key (Pilot superuser; docs/key-lifecycle.md) */
  rotateRootKey: '/v1/operator/rotate-root-key',
  /** additive: the audit-trail HMAC of a secret path (superuser; docs/audit.md) */
  auditHash: '/v1/audit/hash',
  /** additive: checks the MACs of a batch of audit lines (superuser; docs/audit.md) */
  auditVerify: '/v1/audit/verify',
  // Keeper
  keeperContribute: '/v1/store/contribute',
  keeperShard: '/v1/store/shard',
  /** additive: Nexus pushes the rollback anchor (opaque to the Keeper) */
  keeperAnchor: '/v1/store/anchor',
  /** additive: what the Keeper holds (epoch, id, anchor), never a share value */
  keeperStatus: '/v1/store/status',
} as const;

export type PathName = keyof typeof PATHS;

/** Values of the `action` query parameter. */
export const ACTIONS = {
  default: '',
  get: 'get',
  delete: 'delete',
  undelete: 'undelete',
  list: 'list',
  /** additive: permanently wipe versions */
  destroy: 'destroy',
} as const;

export type Action = (typeof ACTIONS)[keyof typeof ACTIONS];
