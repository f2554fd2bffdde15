export * from './components.js';
export * from './startup.js';
