// The kernels tfjs shipped for keys the project kernels took over, kept so project kernels can fall back to
// them (cases they do not speed up) and so benchmarks can time them.
import * as tf from '@tensorflow/tfjs';

const shipped = new Map<string, tf.KernelConfig | undefined>();
const key = (kernelName: string, backendName: string): string => `${backendName}_${kernelName}`;

function rememberShipped(kernelName: string, backendName: string, config: tf.KernelConfig | undefined): void {
  const k = key(kernelName, backendName);
  if (!shipped.has(k)) shipped.set(k, config);
}

/** Registers each kernel of `configs` in place of the one registered for its key, which is remembered as shipped. */
export function replaceKernels(configs: readonly tf.KernelConfig[]): void {
  for (const config of configs) {
    const existing = tf.getKernel(config.kernelName, config.backendName);
    rememberShipped(config.kernelName, config.backendName, existing);
    if (existing !== undefined) tf.unregisterKernel(config.kernelName, config.backendName);
    tf.registerKernel(config);
  }
}


/** Runs a kernel's setup function against its backend when that backend already exists: the engine only
 * sets up kernels registered before the backend was initialised, and ours may have replaced them by then. */
export function setUpKernel(config: tf.KernelConfig): void {
  if (config.setupFunc === undefined) return;
  const backend = tf.findBackend(config.backendName);
  if (backend !== null) config.setupFunc(backend);
}

const setUpDone = new WeakSet<tf.KernelConfig>();

/** The kernel tfjs shipped for this key (whether or not a project kernel currently replaces it), set up and
 * callable directly as `kernelFunc({inputs, attrs, backend})`. */
export function shippedKernel(kernelName: string, backendName: string): tf.KernelConfig | undefined {
  const k = key(kernelName, backendName);
  if (!shipped.has(k)) return tf.getKernel(kernelName, backendName);
  const config = shipped.get(k);
  if (config !== undefined && !setUpDone.has(config) && tf.findBackend(backendName) !== null) {
    setUpKernel(config);
    setUpDone.add(config);
  }
  return config;
}

/** Calls the shipped kernel for (`kernelName`, `backendName`) with the arguments a kernel function got. */
export function callShipped(kernelName: string, backendName: string, args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs: unknown }): tf.TensorInfo {
  const config = shippedKernel(kernelName, backendName);
  if (config === undefined) throw new Error(`no shipped ${backendName} kernel ${kernelName} to fall back to`);
  return config.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
}
