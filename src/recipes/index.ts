export * from './config.js';
export * from './supervised.js';
export * from './distill.js';
export * from './ssl.js';
export * from './options.js';
export { TRAIN_OPTIONS, DISTILL_OPTIONS, SSL_OPTIONS, TEACHER_PREPROCESSING_OPTIONS } from './recipe-options.js';
export * from './run.js';
