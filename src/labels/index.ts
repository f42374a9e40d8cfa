// Training targets: label smoothing of hard labels, and a teacher's soft labels — labelling folders into the
// cache (`softseg label`), opening a teacher against its cache, and reading its labels back during training.
export * from './smoothing.js';
export * from './teacher-labels.js';
export * from './label-folder.js';
export * from './cached-teacher.js';
