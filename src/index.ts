// The softseg library: everything a command does is importable from here.
export * from './errors.js';
