/**
 * The HTTP toolkit, the way in from outside: a guarded router with a JSON and a stream
 * pipeline, one byte-capped body reader, a strict JSON parser, Go-compatible JSON encoding,
 * body schemas, authorisation guards, typed errors and the lingering close. It knows nothing
 * of the application: the peer identity is a type parameter (a SPIFFE ID by default) and the
 * wire error codes are chosen by the application ({@link useErrorCodes}).
 */
export {
  ApiError,
  type ApiErrorOptions,
  ERROR_KIND_STATUS,
  type ErrorCodes,
  type ErrorKind,
  PlainTextError,
  REASON,
  badRequest,
  conflict,
  errorCode,
  internalError,
  notFound,
  notReady,
  payloadTooLarge,
  readFailed,
  unauthorized,
  useErrorCodes,
} from './errors.js';
export { type BodySource, cappedChunks, declaredLength, readBody } from './body.js';
export { DEFAULT_JSON_LIMITS, JsonError, type JsonLimits, type JsonObject, type JsonValue, isJsonObject, parseJson } from './json.js';
export { Bytes32, GoTime, type GoJsonValue, goJson, goJsonString } from './gojson.js';
export { type Infer, type IntOpts, type ObjectOf, type Schema, SchemaError, type StringOpts, isStdBase64, s, validateBody } from './schema.js';
export { type BodyGuardPredicates, type Guard, anyOf, denyAll, guardBody, guardIdentity, isGuard } from './guards.js';
export {
  type HandlerContext,
  type Route,
  type RouteDef,
  RouteDefinitionError,
  type StreamContext,
  type StreamVariant,
  defineRoute,
} from './route.js';
export { type RouterHandler, type RouterOptions, createRouter } from './router.js';
export { type ErrorShape, OCTET_STREAM, type StreamReply, defaultErrorShape } from './reply.js';
export { DEFAULT_LINGER, type LingerLimits } from './linger.js';
export type { Request, Response } from './connection.js';
