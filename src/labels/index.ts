export * from './smoothing.js';
