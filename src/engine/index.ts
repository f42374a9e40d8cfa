export * from './optimizer.js';
export * from './schedule.js';
export * from './step.js';
export * from './checkpoint.js';
export * from './trainer.js';
export * from './ema.js';
