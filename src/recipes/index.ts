export * from './config.js';
export * from './supervised.js';
