// Backends: selection, optional-package discovery and the project's kernel registry.
export * from './select.js';
export * from './packages.js';
export {
  probeWebGpuAdapter,
  activeWebGpuAdapter,
  adapterLine,
  isSoftwareAdapter,
  setWebGpuLoaderForTesting,
  type AdapterProbe,
  type WebGpuAdapterInfo,
} from './webgpu.js';
export {
  projectKernels,
  registerProjectKernels,
  unregisterProjectKernels,
  projectKernelsRegistered,
  shippedKernel,
  listProjectKernels,
} from './kernels/index.js';
