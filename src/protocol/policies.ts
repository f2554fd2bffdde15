/**
 * The policy routes (`/v1/acl/policy`): request schemas, response types in Go field order,
 * their zero-valued error shapes and the success builders.
 *
 * Field names are SPIKE's exactly, including the `spiffiedPattern` typo in policy read
 * responses (requests spell it `spiffeidPattern`). Pattern and permission rules run in the
 * policy engine's compile, not here.
 */
import { GoTime, type Infer, s } from '../http/index.js';
import { LIMITS } from './limits.js';
import { validatePolicyName } from './validate.js';

const policyName = () => s.string({ check: validatePolicyName });

/** `POST /v1/acl/policy` — upsert. */
export const PolicyPutRequest = s.object({
  name: policyName(),
  spiffeidPattern: s.string(),
  pathPattern: s.string(),
  permissions: s.array(s.string(), { maxItems: LIMITS.maxPermissionEntries }),
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

/** Zero-valued error bodies of the policy routes (`code` is the wire error code). */
export const POLICY_ERROR_SHAPES = {
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
} as const;

/** Policy read response from a stored policy (store field names; `Date` or {@link GoTime}). */
export function policyGetResponse(p: {
  name: string;
  spiffeIdPattern: string;
  pathPattern: string;
  permissions: readonly string[];
  createdAt: GoTime | Date;
  updatedAt: GoTime | Date;
}): PolicyGetResponse {
  const toGoTime = (time: GoTime | Date): GoTime => (time instanceof Date ? GoTime.fromDate(time) : time);
  return {
    id: '',
    name: p.name,
    spiffiedPattern: p.spiffeIdPattern,
    pathPattern: p.pathPattern,
    permissions: p.permissions,
    createdAt: toGoTime(p.createdAt),
    updatedAt: toGoTime(p.updatedAt),
  };
}

export function policyListResponse(names: readonly string[]): PolicyListResponse {
  return { policies: names.map((name) => ({ id: '', name })) };
}
