/**
 * The error body of every route: SPIKE answers a failure with the route's response shape,
 * zero-valued, plus `err` (the wire error code). Each resource file defines its own shapes
 * beside its response types; this file gathers them into the one table routes pick from.
 */
import { type ErrorShape, defaultErrorShape } from '../http/index.js';
import { BOOTSTRAP_ERROR_SHAPES } from './bootstrap.js';
import { CIPHER_ERROR_SHAPES } from './cipher.js';
import { KEEPER_ERROR_SHAPES } from './keeper.js';
import { OPERATOR_ERROR_SHAPES } from './operator.js';
import { POLICY_ERROR_SHAPES } from './policies.js';
import { SECRET_ERROR_SHAPES } from './secrets.js';


export const ERROR_SHAPES = {
  /** `{"err": code}`: routes whose success body has no other fields */
  plain: defaultErrorShape,
  ...SECRET_ERROR_SHAPES,
  ...POLICY_ERROR_SHAPES,
  ...CIPHER_ERROR_SHAPES,
  ...OPERATOR_ERROR_SHAPES,
  ...BOOTSTRAP_ERROR_SHAPES,
  ...KEEPER_ERROR_SHAPES,
} as const satisfies Record<string, ErrorShape>;
