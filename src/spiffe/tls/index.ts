/**
 * mTLS for X.509-SVIDs (D14), the way in from outside: the server (server.ts, with its
 * connection budgets in admission.ts and per-request re-checks in peer-grant.ts), the client
 * dispatcher (dialer.ts), the handshake peer check both run (peer.ts), and the defaults and
 * secure contexts they share (context.ts).
 *
 * OpenSSL verifies the peer's chain against the flat list of every trusted authority; that
 * alone accepts SVIDs the SPIFFE rules forbid (CA:TRUE leaves, several URI SANs, a leaf of
 * trust domain A signed by trust domain B's CA). So both sides then run `verifyX509Svid` on
 * the peer's chain against the bundle of the claimed ID's own trust domain, and an
 * `Authorizer` on the resulting SPIFFE ID, before a single HTTP byte is processed (server) or
 * sent (client).
 *
 * - Server (`createMtlsServer`): `node:https`, client certificates required, TLS 1.3 only,
 *   session tickets off and no session cache, so every connection runs a full handshake
 *   against the current bundle. Each request re-checks the connection's grant (validity window,
 *   anchor still in the bundle, maximum age: peer-grant.ts); handshaking and verified
 *   sockets have separate budgets (admission.ts).
 * - Client (`createMtlsDispatcher`): an undici dispatcher (one `Pool` per origin) whose
 *   `connect` builds each TLS socket from the source's *current* SVID and bundles, verifies the
 *   server's SVID and runs the predicate before handing the socket to undici. There is no hostname check: the server is
 *   identified by its SPIFFE ID only.
 * - Client on `node:https` (`createMtlsHttpsClient`): the same dial and peer check (dial.ts)
 *   under Node's own HTTP client, for short-lived callers such as the CLI (no undici to load).
 * - Rotation: the server rebuilds its secure context on the source's `'update'`; the client
 *   reads the source on every new connection. Server connections whose anchor left the
 *   bundle are closed; the rest keep their TLS session until their maximum age.
 */
export { MTLS_DEFAULTS, warmTrustStore } from './context.js';
export { certTimeCause, clockSkewHint } from './clock-hint.js';
export { prefetchDial } from './dial.js';
export { PeerRejectedError, peerChainDer } from './peer.js';
export { createMtlsDispatcher, type MtlsClientOptions } from './dialer.js';
export {
  AnswerTooLargeError, createMtlsHttpsClient, MtlsTimeoutError, readAnswer, type MtlsHttpsClient, type MtlsHttpsClientOptions, type MtlsRequest, type MtlsResponse,
} from './https-client.js';
export {
  createMtlsServer, type MtlsHandler, type MtlsObserver, type MtlsServer, type MtlsServerLimits, type MtlsServerOptions, type PeerIdentity,
} from './server.js';
