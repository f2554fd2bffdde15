/**
 * The HTTP toolkit, the way in from outside: a guarded router with a JSON and a stream
 * pipeline, one byte-capped body reader, a strict JSON parser, Go-compatible JSON encoding,
 * body schemas, authorisation guards, typed errors and the lingering close. It knows nothing
 * of the application: the peer identity is a type parameter (a SPIFFE ID by default) and the
 * wire error codes are chosen by the application ({@link useErrorCodes}).
 */
export { ApiError, PlainTextError, REASON, badRequest, conflict, notFound, notReady, payloadTooLarge, useErrorCodes } from './errors.js';
export { JsonBytes, type KeyMemberNames, isJsonObject, parseJson } from './json.js';
export { Bytes32, GoTime, type GoJsonValue, goJsonString } from './gojson.js';
export { type Infer, type Schema, parseBody, s } from './schema.js';
export { type Guard, denyAll, guardBody, guardIdentity } from './guards.js';
export { type HandlerContext, type Route, RouteDefinitionError, type StreamContext, defineRoute } from './route.js';
export { type AuditRecord, type RequestAuditor, type RequestObserver, type RouterHandler, createRouter } from './router.js';
export { type ErrorShape, OCTET_STREAM, type StreamReply, defaultErrorShape } from './reply.js';
export { DEFAULT_LINGER } from './linger.js';
export { PACKED_CHUNK_BYTES } from './body.js';
