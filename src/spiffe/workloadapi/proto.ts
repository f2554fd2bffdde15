/**
 * The SPIFFE Workload API wire contract (X.509 part), defined in code so nothing has to be
 * loaded from a `.proto` file at run time. Mirrors go-spiffe's `proto/spiffe/workload/
 * workload.proto`: **no proto package**, so method paths are `/SpiffeWorkloadAPI/<Method>`,
 * which is what SPIRE serves. Field numbers are the standard's; bytes fields carry DER
 * (certificates concatenated, keys as unencrypted PKCS#8).
 *
 * Shared by the client (client.ts, x509-source.ts, which decode with messages.ts) and the dev
 * agent, whose grpc-js service definition is built from the same field numbers in
 * `src/agent/service.ts`: no client of the Workload API needs grpc-js or its types.
 */
/** gRPC metadata key every Workload API request must carry with the value `true`. */
export const WORKLOAD_API_HEADER = 'workload.spiffe.io';
export const WORKLOAD_API_HEADER_VALUE = 'true';
/** `SPIFFE_ENDPOINT_SOCKET`'s default, as in go-spiffe and SPIKE. */
export const DEFAULT_WORKLOAD_API_ENDPOINT = 'unix:///tmp/spire-agent/public/api.sock';
export const WORKLOAD_API_ENDPOINT_ENV = 'SPIFFE_ENDPOINT_SOCKET';

/** `X509SVID` (decoded with defaults: absent fields are '' / empty Buffers). */
export interface X509SvidMessage {
  spiffe_id: string;
  x509_svid: Buffer;
  x509_svid_key: Buffer;
  bundle: Buffer;
  hint: string;
}
export interface X509SvidResponseMessage {
  svids: X509SvidMessage[];
  crl: Buffer[];
  /** Keyed by trust domain ID (`spiffe://td`); values are concatenated DER CA certificates. */
  federated_bundles: Record<string, Buffer>;
}
export interface X509BundlesResponseMessage {
  crl: Buffer[];
  /** Keyed by trust domain ID (`spiffe://td`). */
  bundles: Record<string, Buffer>;
}
export type EmptyMessage = Record<string, never>;
