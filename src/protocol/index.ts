/**
 * The wire contract of SPIKE Nexus, Keeper and Bootstrap, shared by the servers and the SDK:
 * one place for every path and `action` value, role IDs and trust roots, permissions, input
 * grammars and limits, request schemas and response types per resource, error shapes, and the
 * byte-level share bodies.
 *
 * | file | holds |
 * |---|---|
 * | `paths.ts` | every route path and `action` value |
 * | `roles.ts` | role IDs, trust roots, recognisers (`isNexus`, `isPilot*`, `isKeeper`, …) |
 * | `permissions.ts` | the five policy permissions |
 * | `validate.ts` | path, name and pattern grammars; restore share ids |
 * | `limits.ts` | field size limits |
 * | `secrets.ts`, `policies.ts`, `cipher.ts`, `operator.ts`, `bootstrap.ts`, `keeper.ts` | request schemas, response types, error shapes per resource |
 * | `keeper-share.ts` | the Keeper share codec (share message ↔ share with parsed Feldman commitments) |
 * | `audit.ts` | the additive audit verify route: request schema, limits, response type |
 * | `error-shapes.ts` | the table of error bodies routes pick from |
 * | `request-json.ts` | the JSON a client sends, typed from a request schema |
 * | `shares.ts` | share bodies read and written without JS strings |
 * | `errors.ts` | the wire `err` codes and reasons (installs them into the HTTP toolkit) |
 *
 * Two doors: this one (everything) and `curve-free.ts`, all of it except the Keeper share
 * codec, which parses Feldman commitments and so loads the curve code (@noble/curves, through
 * src/crypto's index). The SDK and the CLI enter through `curve-free.ts`: a `spike secret get`
 * never evaluates the curve code (issue 15). This door re-exports that one whole.
 *
 * Response encoding uses `goJson`: {@link Bytes32} = Go `[32]byte`, {@link GoTime} = Go
 * `time.Time`, `Buffer` = Go `[]byte` (base64), `Map` = Go map.
 */
export * from './curve-free.js';
export * from './keeper-share.js';
