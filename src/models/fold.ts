/**
 * The inference form of a zoo model: each batch norm that follows a convolution folded into that convolution's
 * kernel and bias (with the ReLU after it as the convolution's activation), so a forward pass runs one fused
 * convolution where it ran a convolution, a batch norm and a ReLU. Batch norm in inference mode is the affine map
 * y = (x − mean)·γ/√(var + ε) + β per channel, so for a convolution without activation
 * BN(conv(x, W) + b) = conv(x, W·a) + (b − mean)·a + β with a = γ/√(var + ε): the same function up to float
 * rounding. Only for inference: the folded model has no batch norm to train, and its weights are new tensors
 * (the original model is left as it was).
 */
import * as tf from '@tensorflow/tfjs';
import { wrapLayersModel, type SegModel } from './base.js';

/** A layer of a Keras-format model topology (model.json's `modelTopology.config.layers`). */
interface LayerJson {
  class_name: string;
  name: string;
  config: Record<string, unknown>;
  inbound_nodes: [string, number, number, Record<string, unknown>][][];
}

interface Fold {
  conv: string;
  bn: string;
  relu?: string;
}

const FOLDABLE = new Set(['Conv2D', 'DepthwiseConv2D']);

/** The conv → batch norm (→ ReLU) chains of a topology that can be folded: each link the only consumer of the one before. */
function findFolds(layers: LayerJson[]): Fold[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  const consumers = new Map<string, string[]>();
  for (const l of layers) for (const node of l.inbound_nodes) for (const [from] of node) consumers.set(from, [...(consumers.get(from) ?? []), l.name]);
  const onlyInput = (l: LayerJson): LayerJson | undefined => {
    if (l.inbound_nodes.length !== 1 || l.inbound_nodes[0]!.length !== 1) return undefined;
    const [from, nodeIndex, tensorIndex] = l.inbound_nodes[0]![0]!;
    return nodeIndex === 0 && tensorIndex === 0 ? byName.get(from) : undefined;
  };
  const folds: Fold[] = [];
  for (const bn of layers) {
    if (bn.class_name !== 'BatchNormalization') continue;
    const c = bn.config;
    if (c.center === false || c.scale === false || (c.axis !== -1 && c.axis !== 3 && !(Array.isArray(c.axis) && c.axis.length === 1 && (c.axis[0] === -1 || c.axis[0] === 3)))) continue;
    const conv = onlyInput(bn);
    if (!conv || !FOLDABLE.has(conv.class_name) || (conv.config.activation ?? 'linear') !== 'linear' || conv.inbound_nodes.length !== 1) continue;
    if ((consumers.get(conv.name) ?? []).length !== 1) continue;
    const after = consumers.get(bn.name) ?? [];
    const next = after.length === 1 ? byName.get(after[0]!) : undefined;
    const plainRelu = next?.class_name === 'ReLU' && next.config.max_value == null && !next.config.negative_slope && !next.config.threshold && next.inbound_nodes.length === 1;
    folds.push({ conv: conv.name, bn: bn.name, relu: plainRelu ? next!.name : undefined });
  }
  return folds;
}

/** The kernel and bias of `conv` with the inference-mode batch norm `bn` folded in. */
function foldedWeights(conv: tf.layers.Layer, bn: tf.layers.Layer, depthwise: boolean): [tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const [kernel, bias] = conv.getWeights();
    const [gamma, beta, mean, variance] = bn.getWeights();
    const epsilon = (bn.getConfig() as { epsilon: number }).epsilon;
    const a = tf.div(gamma!, tf.sqrt(tf.add(variance!, epsilon)));
    // Output channel o of a depthwise kernel [kh, kw, in, mult] is in·mult + m.
    const scale = depthwise ? tf.reshape(a, [1, 1, kernel!.shape[2]!, kernel!.shape[3]!]) : a;
    const b = tf.add(tf.mul(tf.sub(bias ?? tf.zerosLike(mean!), mean!), a), beta!);
    return [tf.mul(kernel!, scale), b];
  });
}

/**
 * The inference form of `seg` (see the module comment): a new model with its own weights, or `seg` itself
 * when nothing folds. Outputs equal `seg.apply(x, false)` up to float rounding.
 */
export async function foldBatchNorm(seg: SegModel): Promise<SegModel> {
  const topology = seg.model.toJSON(null, false) as unknown as { config: { layers: LayerJson[]; output_layers: [string, number, number][] } };
  const layers = topology.config.layers;
  const folds = findFolds(layers);
  if (folds.length === 0) return seg;
  const replacedBy = new Map<string, string>();
  const removed = new Set<string>();
  for (const f of folds) {
    const conv = layers.find((l) => l.name === f.conv)!;
    conv.config.use_bias = true;
    conv.config.bias_initializer = { class_name: 'Zeros', config: {} };
    if (f.relu) conv.config.activation = 'relu';
    for (const gone of [f.bn, f.relu]) {
      if (gone === undefined) continue;
      replacedBy.set(gone, f.conv);
      removed.add(gone);
    }
  }
  for (const l of layers) for (const node of l.inbound_nodes) for (const entry of node) entry[0] = replacedBy.get(entry[0]) ?? entry[0];
  for (const out of topology.config.output_layers) out[0] = replacedBy.get(out[0]) ?? out[0];
  topology.config.layers = layers.filter((l) => !removed.has(l.name));

  const folded = await tf.models.modelFromJSON({ modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'] });
  const foldOf = new Map(folds.map((f) => [f.conv, f]));
  for (const layer of folded.layers) {
    const source = seg.model.getLayer(layer.name);
    const f = foldOf.get(layer.name);
    const weights = f ? foldedWeights(source, seg.model.getLayer(f.bn), source.getClassName() === 'DepthwiseConv2D') : source.getWeights();
    if (weights.length > 0) layer.setWeights(weights);
    if (f) tf.dispose(weights);
  }
  return wrapLayersModel(seg.name, seg.options, seg.sizeMultiple, folded);
}
