// Data sets: scanning, validation, decoding, the streaming loader and the synthetic shapes set.
export * from './dataset.js';
export * from './decode.js';
export * from './validate.js';
export * from './loader.js';
export * from './synthetic.js';
export { mixSeed, randomFor } from './seed.js';
export { writeFileAtomic } from './fs-util.js';
