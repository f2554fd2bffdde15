/**
 * The dev agent's grpc-js definition of the `SpiffeWorkloadAPI` service (X.509 methods with
 * codecs built by @grpc/proto-loader from the descriptor below, on first use), for
 * `grpc.Server#addService`. The field numbers and message shapes are those of the client's
 * wire contract (src/spiffe/workloadapi/proto.ts, decoded there without grpc-js); a property
 * test checks both sides agree (src/spiffe/workloadapi/protowire.test.ts).
 *
 * The JWT methods are listed with pass-through (raw bytes) codecs only so the agent can answer
 * them with `Unimplemented` after checking the security header; nothing here decodes JWTs.
 */
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type { EmptyMessage, X509BundlesResponseMessage, X509SvidResponseMessage } from '../spiffe/index.js';

const DESCRIPTOR = {
  nested: {
    X509SVIDRequest: { fields: {} },
    X509SVIDResponse: {
      fields: {
        svids: { rule: 'repeated', type: 'X509SVID', id: 1 },
        crl: { rule: 'repeated', type: 'bytes', id: 2 },
        federated_bundles: { keyType: 'string', type: 'bytes', id: 3 },
      },
    },
    X509SVID: {
      fields: {
        spiffe_id: { type: 'string', id: 1 },
        x509_svid: { type: 'bytes', id: 2 },
        x509_svid_key: { type: 'bytes', id: 3 },
        bundle: { type: 'bytes', id: 4 },
        hint: { type: 'string', id: 5 },
      },
    },
    X509BundlesRequest: { fields: {} },
    X509BundlesResponse: {
      fields: {
        crl: { rule: 'repeated', type: 'bytes', id: 1 },
        bundles: { keyType: 'string', type: 'bytes', id: 2 },
      },
    },
    SpiffeWorkloadAPI: {
      methods: {
        FetchX509SVID: { requestType: 'X509SVIDRequest', responseType: 'X509SVIDResponse', responseStream: true },
        FetchX509Bundles: { requestType: 'X509BundlesRequest', responseType: 'X509BundlesResponse', responseStream: true },
      },
    },
  },
};

/** The method and service definitions built from the descriptor (see {@link workloadApiDefinitions}). */
export interface WorkloadApiDefinitions {
  FETCH_X509_SVID: MethodDefinition<EmptyMessage, X509SvidResponseMessage>;
  FETCH_X509_BUNDLES: MethodDefinition<EmptyMessage, X509BundlesResponseMessage>;
  /** The full `SpiffeWorkloadAPI` service, for `grpc.Server#addService`. */
  WORKLOAD_API_SERVICE: ServiceDefinition;
}

const identity = (b: Buffer): Buffer => b;
function rawMethod(name: string, responseStream: boolean): MethodDefinition<Buffer, Buffer> {
  return {
    path: `/SpiffeWorkloadAPI/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** JWT methods, raw codecs (see the module comment). */
export const FETCH_JWT_SVID = rawMethod('FetchJWTSVID', false);
export const FETCH_JWT_BUNDLES = rawMethod('FetchJWTBundles', true);
export const VALIDATE_JWT_SVID = rawMethod('ValidateJWTSVID', false);

let definitions: Promise<WorkloadApiDefinitions> | undefined;

/** The X.509 methods and the full service, built once (loads @grpc/proto-loader on first call). */
export function workloadApiDefinitions(): Promise<WorkloadApiDefinitions> {
  definitions ??= import('@grpc/proto-loader').then(({ fromJSON }) => {
    const packageDefinition = fromJSON(DESCRIPTOR as Parameters<typeof fromJSON>[0], {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      arrays: true,
      objects: true,
    });
    const x509Service = packageDefinition['SpiffeWorkloadAPI'] as unknown as Record<string, MethodDefinition<object, object>>;
    const typed = <Req, Res>(name: string): MethodDefinition<Req, Res> => {
      const m = x509Service[name];
      if (!m) throw new Error(`Workload API descriptor lacks ${name}`);
      return m as unknown as MethodDefinition<Req, Res>;
    };
    const FETCH_X509_SVID = typed<EmptyMessage, X509SvidResponseMessage>('FetchX509SVID');
    const FETCH_X509_BUNDLES = typed<EmptyMessage, X509BundlesResponseMessage>('FetchX509Bundles');
    const WORKLOAD_API_SERVICE = {
      FetchX509SVID: FETCH_X509_SVID,
      FetchX509Bundles: FETCH_X509_BUNDLES,
      FetchJWTSVID: FETCH_JWT_SVID,
      FetchJWTBundles: FETCH_JWT_BUNDLES,
      ValidateJWTSVID: VALIDATE_JWT_SVID,
    } as unknown as ServiceDefinition;
    return { FETCH_X509_SVID, FETCH_X509_BUNDLES, WORKLOAD_API_SERVICE };
  });
  return definitions;
}
