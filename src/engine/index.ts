export * from './optimizer.js';
export * from './schedule.js';
export * from './step.js';
