export * from '../lib/env.js';
export * from './components.js';
