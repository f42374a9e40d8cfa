export * from './predict.js';
export * from './evaluate.js';
export * from './model-dir.js';
export * from './predict-folder.js';
export * from './softseg-json.js';
