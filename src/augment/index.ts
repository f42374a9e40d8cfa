// Seeded joint augmentation: the public surface of src/augment.
export * from './types.js';
export * from './normalize.js';
export { applyPhotometric, gaussianBlur, type PhotometricOptions } from './photometric.js';
export { warpSample, warpSoft, type MaskSampling, type WarpSpec, type WarpResult } from './geometric.js';
export * from './augment.js';
export * from './cutmix.js';
