/**
 * The checked-in authorisation matrix (P4 `authz-matrix`, POL-01, POL-16, POL-21):
 * every identity × every Nexus route and action, with the expected answer.
 *
 * The additive audit routes (`/v1/audit/hash`, `/v1/audit/verify`) and
 * `/v1/operator/accept-rollback` are columns too: the superuser identity only, whatever policy
 * a caller holds (with nothing to accept, the superuser's call changes nothing).
 *
 * Cells: an HTTP status (asserted exactly, together with the route's `err` code and, for 401,
 * its exact zero-valued error body), or `'allow'` for routes owned by other modules (cipher,
 * operator, bootstrap) where only "not denied and routed" is pinned here — their own tests pin
 * the success bodies. Policies are installed by the test before the matrix runs (below).
 *
 * Each identity works on its own secret `matrix/<identity>` (created by Pilot with versions 1
 * and 2 beforehand) and its own policy `victim-<identity>` (for policy get/delete), so cells
 * do not depend on each other. Columns run in the order listed.
 */
export const TD = 'spike.ist';

/** Identities added to the stack's agent (the built-ins pilot, recover, restore, lite, nexus, bootstrap, keeper-1 exist already). */
export const EXTRA_IDENTITIES: Record<string, string> = {
  'app-read': `spiffe://${TD}/workload/app-read`,
  'app-write': `spiffe://${TD}/workload/app-write`,
  'app-list': `spiffe://${TD}/workload/app-list`,
  'app-none': `spiffe://${TD}/workload/app-none`,
  'app-exec': `spiffe://${TD}/workload/app-exec`,
  'acl-admin': `spiffe://${TD}/workload/acl-admin`,
  /** look-alike of the superuser role (TLS-03-style prefix confusion) */
  lookalike: `spiffe://${TD}/spike/pilot/role/superuser-x`,
  /** look-alike of the recover role */
  'recover-x': `spiffe://${TD}/spike/pilot/role/recoverx`,
};

/** Policies installed by Pilot before the matrix runs. */
export const MATRIX_POLICIES = [
  { name: 'm-read', spiffeidPattern: '^spiffe://spike\\.ist/workload/app-read$', pathPattern: '^matrix/.*$', permissions: ['read'] },
  { name: 'm-write', spiffeidPattern: '^spiffe://spike\\.ist/workload/app-write$', pathPattern: '^matrix/.*$', permissions: ['write'] },
  { name: 'm-list', spiffeidPattern: '^spiffe://spike\\.ist/workload/app-list$', pathPattern: '^matrix/.*$', permissions: ['list'] },
  { name: 'm-exec', spiffeidPattern: '^spiffe://spike\\.ist/workload/app-exec$', pathPattern: '^spike/system/cipher/exec$', permissions: ['execute'] },
  { name: 'm-acl', spiffeidPattern: '^spiffe://spike\\.ist/workload/acl-admin$', pathPattern: '^spike/system/acl$', permissions: ['read', 'write', 'list'] },
  // P5 / POL-16: a catch-all super policy for the look-alikes must not open break-glass routes.
  { name: 'm-catchall', spiffeidPattern: '^spiffe://spike\\.ist/spike/pilot/role/recoverx$', pathPattern: '.*', permissions: ['super'] },
] as const;

export const COLUMNS = [
  'secret.put',
  'secret.get',
  'secret.get.v1',
  'secret.metadata',
  'secret.list',
  'secret.delete',
  'secret.undelete',
  'secret.destroy',
  'policy.put',
  'policy.get',
  'policy.list',
  'policy.delete',
  'cipher.encrypt',
  'cipher.decrypt',
  'operator.recover',
  'operator.restore',
  'bootstrap.verify',
  'audit.hash',
  'audit.verify',
  'operator.accept_rollback',
  'unknown.route',
  'wrong.method',
] as const;
export type Column = (typeof COLUMNS)[number];
export type Cell = 200 | 400 | 401 | 404 | 'allow';

/** Columns served by modules other than secrets/policies (asserted as allow/deny only). */
export const FOREIGN_COLUMNS: ReadonlySet<Column> = new Set(['cipher.encrypt', 'cipher.decrypt', 'operator.recover', 'operator.restore', 'bootstrap.verify']);

const DENY_DATA = {
  'secret.put': 401, 'secret.get': 401, 'secret.get.v1': 401, 'secret.metadata': 401, 'secret.list': 401,
  'secret.delete': 401, 'secret.undelete': 401, 'secret.destroy': 401,
  'policy.put': 401, 'policy.get': 401, 'policy.list': 401, 'policy.delete': 401,
} as const satisfies Partial<Record<Column, Cell>>;
const DENY_FOREIGN = {
  'cipher.encrypt': 401, 'cipher.decrypt': 401, 'operator.recover': 401, 'operator.restore': 401, 'bootstrap.verify': 401,
} as const satisfies Partial<Record<Column, Cell>>;
/** The additive audit routes: the superuser's identity only (no policy opens them). */
const DENY_AUDIT = { 'audit.hash': 401, 'audit.verify': 401, 'operator.accept_rollback': 401 } as const satisfies Partial<Record<Column, Cell>>;
const FALLBACK = { 'unknown.route': 400, 'wrong.method': 400 } as const satisfies Partial<Record<Column, Cell>>;

/** Expected answer per identity and column. Written out per row on purpose (review the table). */
export const EXPECTED: Record<string, Record<Column, Cell>> = {
  // Pilot superuser: everything on secrets, policies and cipher; no break-glass routes.
  pilot: {
    'secret.put': 200, 'secret.get': 200, 'secret.get.v1': 200, 'secret.metadata': 200, 'secret.list': 200,
    'secret.delete': 200, 'secret.undelete': 200, 'secret.destroy': 200,
    'policy.put': 200, 'policy.get': 200, 'policy.list': 200, 'policy.delete': 200,
    'cipher.encrypt': 'allow', 'cipher.decrypt': 'allow', 'operator.recover': 401, 'operator.restore': 401, 'bootstrap.verify': 401,
    'audit.hash': 200, 'audit.verify': 200, 'operator.accept_rollback': 200,
    ...FALLBACK,
  },
  // Recover / restore roles: only their own route; policy-checked (no policy) everywhere else.
  recover: { ...DENY_DATA, ...DENY_FOREIGN, 'operator.recover': 'allow', ...DENY_AUDIT, ...FALLBACK },
  restore: { ...DENY_DATA, ...DENY_FOREIGN, 'operator.restore': 'allow', ...DENY_AUDIT, ...FALLBACK },
  // Lite workload: cipher always; secrets and policies never.
  lite: { ...DENY_DATA, ...DENY_FOREIGN, 'cipher.encrypt': 'allow', 'cipher.decrypt': 'allow', ...DENY_AUDIT, ...FALLBACK },
  // Infrastructure identities get nothing on Nexus's data routes; bootstrap only verify.
  nexus: { ...DENY_DATA, ...DENY_FOREIGN, ...DENY_AUDIT, ...FALLBACK },
  'keeper-1': { ...DENY_DATA, ...DENY_FOREIGN, ...DENY_AUDIT, ...FALLBACK },
  bootstrap: { ...DENY_DATA, ...DENY_FOREIGN, 'bootstrap.verify': 'allow', ...DENY_AUDIT, ...FALLBACK },
  // read on ^matrix/.*$
  'app-read': { ...DENY_DATA, 'secret.get': 200, 'secret.get.v1': 200, 'secret.metadata': 200, ...DENY_FOREIGN, ...DENY_AUDIT, ...FALLBACK },
  // write on ^matrix/.*$
  'app-write': { ...DENY_DATA, 'secret.put': 200, 'secret.delete': 200, 'secret.undelete': 200, 'secret.destroy': 200, ...DENY_FOREIGN, ...DENY_AUDIT, ...FALLBACK },
  // list on ^matrix/.*$ (POL-21: the list shows exactly the matrix/* paths)
  'app-list': { ...DENY_DATA, 'secret.list': 200, ...DENY_FOREIGN, ...DENY_AUDIT, ...FALLBACK },
  // no policy at all (POL-01)
  'app-none': { ...DENY_DATA, ...DENY_FOREIGN, ...DENY_AUDIT, ...FALLBACK },
  // execute on the cipher gate only
  'app-exec': { ...DENY_DATA, ...DENY_FOREIGN, 'cipher.encrypt': 'allow', 'cipher.decrypt': 'allow', ...DENY_AUDIT, ...FALLBACK },
  // read/write/list on the ACL gate: policy admin; `list` on a gate path passes the secret-list
  // gate but the filtered list is empty (it can read no secret path).
  'acl-admin': {
    ...DENY_DATA, 'secret.list': 200, 'policy.put': 200, 'policy.get': 200, 'policy.list': 200, 'policy.delete': 200,
    ...DENY_FOREIGN, ...DENY_AUDIT, ...FALLBACK,
  },
  // look-alike superuser ID: no superuser rights anywhere
  lookalike: { ...DENY_DATA, ...DENY_FOREIGN, ...DENY_AUDIT, ...FALLBACK },
  // look-alike recover ID holding a catch-all `super` policy: every data route, never break-glass (P5)
  'recover-x': {
    'secret.put': 200, 'secret.get': 200, 'secret.get.v1': 200, 'secret.metadata': 200, 'secret.list': 200,
    'secret.delete': 200, 'secret.undelete': 200, 'secret.destroy': 200,
    'policy.put': 200, 'policy.get': 200, 'policy.list': 200, 'policy.delete': 200,
    'cipher.encrypt': 'allow', 'cipher.decrypt': 'allow', 'operator.recover': 401, 'operator.restore': 401, 'bootstrap.verify': 401,
    ...DENY_AUDIT, ...FALLBACK,
  },
};
