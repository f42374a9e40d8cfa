export * from './config.js';
export * from './supervised.js';
export * from './distill.js';
export * from './ssl.js';
