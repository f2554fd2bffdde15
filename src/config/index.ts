export * from './components.js';
export * from './startup.js';
export { postgresOptionsFromEnv } from './postgres-env.js';
