// Backends: selection, optional-package discovery and the project's kernel registry.
export * from './select.js';
export * from './packages.js';
export {
  projectKernels,
  registerProjectKernels,
  unregisterProjectKernels,
  projectKernelsRegistered,
  shippedKernel,
  listProjectKernels,
} from './kernels/index.js';
