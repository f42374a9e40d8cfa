// A small TF.js → ONNX exporter for the layer types of the U-Net zoo models (Conv2D, BatchNormalization, ReLU,
// ZeroPadding2D, MaxPooling2D, bilinear UpSampling2D, Concatenate): NCHW, dynamic N/H/W, opset 13. Test and measurement
// code only — it proves that the same network gives the same probabilities through both teacher kinds.
import type * as tf from '@tensorflow/tfjs';
import { encodeOnnx, type OnnxGraphSpec, type OnnxNode } from './nets.js';

/** HWIO → OIHW. */
function hwioToOihw(w: Float32Array, kh: number, kw: number, i: number, o: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let b = 0; b < i; b++) for (let a = 0; a < o; a++) {
    out[((a * i + b) * kh + y) * kw + x] = w[((y * kw + x) * i + b) * o + a]!;
  }
  return out;
}

interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): tf.Tensor[];
  inboundNodes: { inboundLayers: { name: string }[] }[];
}

/** Exports a single-output NHWC LayersModel built from the supported layers to ONNX bytes (NCHW in and out, logits), as PyTorch exports look. */
export function layersModelToOnnx(model: tf.LayersModel, metadata?: Record<string, string>): Uint8Array {
  const nodes: OnnxNode[] = [];
  const inits: OnnxGraphSpec['initializers'] = [];
  const layers = model.layers as unknown as LayerLike[];
  const inputLayer = layers[0]!;
  const tensorOf = (layerName: string) => (layerName === inputLayer.name ? 'image' : layerName);
  let numClasses = 0;
  for (const layer of layers.slice(1)) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig();
    const ins = layer.inboundNodes[0]!.inboundLayers.map((l) => tensorOf(l.name));
    const out = layer.name;
    const weights = layer.getWeights().map((t) => t.dataSync() as Float32Array);
    switch (cls) {
      case 'Conv2D': {
        const kernel = layer.getWeights()[0]!;
        const [kh, kw, ci, co] = kernel.shape as [number, number, number, number];
        const strides = cfg.strides as number[];
        const rate = cfg.dilationRate as number[] | number;
        const dil = Array.isArray(rate) ? rate : [rate, rate];
        if (cfg.padding !== 'same' || strides[0] !== 1 || strides[1] !== 1 || kh % 2 === 0) throw new Error(`unsupported Conv2D ${layer.name}`);
        const ph = ((kh - 1) * dil[0]!) / 2, pw = ((kw - 1) * dil[1]!) / 2;
        inits.push({ name: `${out}_w`, dims: [co, ci, kh, kw], data: hwioToOihw(weights[0]!, kh, kw, ci, co) });
        const inputs = [ins[0]!, `${out}_w`];
        if (cfg.useBias) {
          inits.push({ name: `${out}_b`, dims: [co], data: weights[1]! });
          inputs.push(`${out}_b`);
        }
        const activation = cfg.activation as string;
        const convOut = activation === 'relu' ? `${out}_pre` : out;
        nodes.push({ op: 'Conv', inputs, outputs: [convOut], attrs: { kernel_shape: [kh, kw], pads: [ph, pw, ph, pw], dilations: dil } });
        if (activation === 'relu') nodes.push({ op: 'Relu', inputs: [convOut], outputs: [out] });
        else if (activation !== 'linear') throw new Error(`unsupported activation ${activation}`);
        numClasses = co;
        break;
      }
      case 'BatchNormalization': {
        const [gamma, beta, mean, variance] = weights as [Float32Array, Float32Array, Float32Array, Float32Array];
        const c = gamma.length;
        for (const [k, v] of [['g', gamma], ['b', beta], ['m', mean], ['v', variance]] as const) inits.push({ name: `${out}_${k}`, dims: [c], data: v });
        nodes.push({ op: 'BatchNormalization', inputs: [ins[0]!, `${out}_g`, `${out}_b`, `${out}_m`, `${out}_v`], outputs: [out], attrs: { epsilon: cfg.epsilon as number } });
        break;
      }
      case 'ReLU':
        nodes.push({ op: 'Relu', inputs: [ins[0]!], outputs: [out] });
        break;
      case 'ZeroPadding2D': {
        // ONNX Pad (constant zeros, NCHW pads as [begin…, end…]), so any consumer sees the padded tensor
        const [[t, b], [l, r]] = cfg.padding as [[number, number], [number, number]];
        inits.push({ name: `${out}_pads`, dims: [8], data: BigInt64Array.from([0, 0, t, l, 0, 0, b, r].map(BigInt)) });
        nodes.push({ op: 'Pad', inputs: [ins[0]!, `${out}_pads`], outputs: [out] });
        break;
      }
      case 'MaxPooling2D': {
        const size = cfg.poolSize as number[];
        const strides = cfg.strides as number[];
        if (cfg.padding !== 'valid') throw new Error(`unsupported MaxPooling2D ${layer.name} (padding ${String(cfg.padding)})`);
        nodes.push({ op: 'MaxPool', inputs: [ins[0]!], outputs: [out], attrs: { kernel_shape: size, strides } });
        break;
      }
      case 'UpSampling2D': {
        const size = cfg.size as number[];
        if (cfg.interpolation !== 'bilinear') throw new Error('only bilinear upsampling');
        inits.push({ name: `${out}_scales`, dims: [4], data: new Float32Array([1, 1, size[0]!, size[1]!]) });
        // tf.image.resizeBilinear without half-pixel centres = ONNX "asymmetric".
        nodes.push({ op: 'Resize', inputs: [ins[0]!, '', `${out}_scales`], outputs: [out], attrs: { mode: 'linear', coordinate_transformation_mode: 'asymmetric' } });
        break;
      }
      case 'Concatenate':
        nodes.push({ op: 'Concat', inputs: ins, outputs: [out], attrs: { axis: 1 } });
        break;
      default:
        throw new Error(`unsupported layer ${cls} (${layer.name})`);
    }
  }
  const last = layers[layers.length - 1]!.name;
  return encodeOnnx({
    input: { name: 'image', dims: ['N', 3, 'H', 'W'] },
    output: { name: last, dims: ['N', numClasses, 'H', 'W'] },
    initializers: inits,
    nodes,
    metadata,
  });
}
