export * from './jdt.js';
export * from './cross-entropy.js';
export * from './objectives.js';
export * from './pairwise.js';
