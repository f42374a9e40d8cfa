// The model zoo's public surface (re-exported by src/index.ts).
export { scaleChannels, deriveSeed, LayerBuilder, withoutAux } from './base.js';
export { convInitializer, depthwiseInitializer, biasInitializer } from './init.js';
export type { Architecture, ArchitectureOutputs, ModelOptions, ResolvedOptions, SegModel, SegOutputs } from './base.js';
export { createModel, listModels, modelInfo, sizeMultiple, getArchitecture, countMultiplyAdds } from './registry.js';
export type { ModelInfo } from './registry.js';
export { saveModel, loadModel, loadSegModel, MODEL_JSON, WEIGHTS_BIN } from './io.js';
export { foldBatchNorm } from './fold.js';
export { AtrousConv2D, BroadcastLike, customLayers } from './layers.js';
export type { AtrousConv2DConfig } from './layers.js';
export { asppRates } from './deeplabv3.js';
