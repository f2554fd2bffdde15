/** Public surface of the SPIFFE identity layer. */
export * from './id.js';
export * from './bundle.js';
export * from './svid.js';
export * from './source.js';
export * from './authorize.js';
export * from './verify.js';
export * from './tls/index.js';
export * from './workloadapi/index.js';
