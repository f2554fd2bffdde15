/**
 * Public surface of the SPIFFE identity layer, in go-spiffe's one-concept-per-module shape:
 * SPIFFE IDs (id.ts), trust bundles (bundle.ts), own X.509-SVIDs (svid.ts), peer SVID
 * verification (verify.ts), sources (source.ts), authorizers (authorize.ts), the Workload API
 * client (workloadapi/) and mTLS server and dialer (tls/). Certificate facts (certfacts.ts)
 * and PEM armour (pem.ts) are internal.
 */
export * from './id.js';
export * from './bundle.js';
export * from './svid.js';
export * from './source.js';
export * from './authorize.js';
export * from './verify.js';
export * from './tls/index.js';
export * from './workloadapi/index.js';
