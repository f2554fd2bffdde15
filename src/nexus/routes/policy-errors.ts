/**
 * How a refused policy write answers over HTTP, in one place. The policy package throws a
 * typed {@link PolicyError} and knows nothing about HTTP; here every one of its codes becomes
 * 400 `api_bad_request` (SPIKE's code; never 500, D3/B4) with the error's fixed message
 * exposed (it never echoes the name or pattern) and a finer reason for logs:
 *
 * | policy code                              | HTTP | `err`             | reason               |
 * |------------------------------------------|------|-------------------|----------------------|
 * | `policy_invalid_name`                    | 400  | `api_bad_request` | `invalid_name`       |
 * | `policy_invalid_spiffeid_pattern`        | 400  | `api_bad_request` | `invalid_pattern`    |
 * | `policy_invalid_path_pattern`            | 400  | `api_bad_request` | `invalid_pattern`    |
 * | `policy_invalid_permissions`             | 400  | `api_bad_request` | `invalid_permission` |
 * | `policy_spiffeid_pattern_not_compiled`   | 400  | `api_bad_request` | `invalid_pattern`    |
 * | `policy_path_pattern_not_compiled`       | 400  | `api_bad_request` | `invalid_pattern`    |
 * | `policy_spiffeid_pattern_too_complex`    | 400  | `api_bad_request` | `invalid_pattern`    |
 * | `policy_path_pattern_too_complex`        | 400  | `api_bad_request` | `invalid_pattern`    |
 */
import { type ApiError, REASON, type Reason, badRequest } from '../../protocol/index.js';
import { PolicyError, type PolicyErrorCode } from '../policy/index.js';

const REASON_OF: Readonly<Record<PolicyErrorCode, Reason>> = {
  policy_invalid_name: REASON.invalidName,
  policy_invalid_spiffeid_pattern: REASON.invalidPattern,
  policy_invalid_path_pattern: REASON.invalidPattern,
  policy_invalid_permissions: REASON.invalidPermission,
  policy_spiffeid_pattern_not_compiled: REASON.invalidPattern,
  policy_path_pattern_not_compiled: REASON.invalidPattern,
  policy_spiffeid_pattern_too_complex: REASON.invalidPattern,
  policy_path_pattern_too_complex: REASON.invalidPattern,
};

/** The wire answer of a refused policy (see module doc). */
export function policyErrorToApi(e: PolicyError): ApiError {
  return badRequest(REASON_OF[e.code], e.message);
}

/** Runs a policy check, turning a {@link PolicyError} into its 400; other errors pass unchanged. */
export function viaPolicy<T>(check: () => T): T {
  try {
    return check();
  } catch (e) {
    throw e instanceof PolicyError ? policyErrorToApi(e) : e;
  }
}
