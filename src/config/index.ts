export * from './env.js';
export * from './components.js';
