// Data sets: scanning, validation, decoding, the streaming loader and the synthetic shapes set.
export * from './dataset.js';
export * from './decode.js';
export * from './validate.js';
export * from './loader.js';
export { prepareSample, samplePreparer, type SampleRequest, type PreparedSample, type SamplePreparer, type SoftCacheSource } from './sample.js';
export * from './synthetic.js';
export { mixSeed, randomFor } from './seed.js';
export { writeFileAtomic } from './fs-util.js';
