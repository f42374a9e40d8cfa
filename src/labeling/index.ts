export * from './teacher-labels.js';
