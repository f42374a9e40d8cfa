export * from './teacher-labels.js';
export * from './label-folder.js';
export * from './cached-teacher.js';
