/**
 * Why a policy was refused for a write, as a typed {@link PolicyError} with a stable code.
 * The policy package knows nothing about HTTP: the route layer maps these codes to its wire
 * answer (src/nexus/routes/policy-errors.ts). Messages are fixed sentences and never contain
 * the refused name or pattern (a pattern can be long, and is caller input).
 */
import { SpikeError } from '../../lib/index.js';

/** Every code a policy write can be refused with, and its fixed message. */
export const POLICY_ERRORS = {
  policy_invalid_name: 'invalid policy name',
  policy_invalid_spiffeid_pattern: 'invalid SPIFFE ID pattern',
  policy_invalid_path_pattern: 'invalid path pattern',
  policy_invalid_permissions: 'invalid permissions',
  /** Within SPIKE's grammar but outside what re2js compiles (backreferences, look-around, …). */
  policy_spiffeid_pattern_not_compiled: 'SPIFFE ID pattern does not compile',
  policy_path_pattern_not_compiled: 'path pattern does not compile',
  /** Compiles, but to a program over MAX_PATTERN_PROGRAM (matching it would stall requests). */
  policy_spiffeid_pattern_too_complex: 'SPIFFE ID pattern is too complex',
  policy_path_pattern_too_complex: 'path pattern is too complex',
} as const;

export type PolicyErrorCode = keyof typeof POLICY_ERRORS;

/** A policy refused for a write; `code` is one of {@link POLICY_ERRORS}. */
export class PolicyError extends SpikeError {
  declare readonly code: PolicyErrorCode;
  constructor(code: PolicyErrorCode) {
    super(code, POLICY_ERRORS[code]);
  }
}

