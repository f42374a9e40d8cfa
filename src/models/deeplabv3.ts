// A small DeepLabV3: a light MobileNet-style backbone with output stride 8 (default) or 16, an ASPP
// head, and bilinear upsampling of the logits to input resolution.
//
// Backbone: conv3×3 s2 stem 16; depthwise-separable blocks 16→32 s2, 32→64 s2, 64→64 (stride 8,
// the aux head's feature); then 64→128 and 128→128 ×2 — at OS16 the first of these has stride 2,
// at OS8 none do and their depthwise convs are dilated by 2 instead (DeepLab's atrous backbone).
// ASPP on the 128-channel feature, every branch ch(64) channels with BN+ReLU: a 1×1 conv, three 3×3
// convs with dilation rates 2/4/6 at OS8 (1/2/3 at OS16 — DeepLab's 6/12/18 scaled to features of
// 8–32 pixels for 64–256 crops), and image pooling (global average pool → 1×1 conv with bias + ReLU,
// no BN so a batch of one trains → broadcast back). Concat (5 × 64) → 1×1 project + BN + ReLU → 1×1
// classifier → bilinear ×OS. No dropout (keeps seeded training deterministic).
// Dilated convs train as the AtrousConv2D layer (TF.js has no gradient for dilated conv2d); models/io.ts
// saves them as stock layers. The broadcast back is built from stock layers (see below), so the saved
// model.json loads in plain TensorFlow.js.
import * as tf from '@tensorflow/tfjs';
import type { Architecture, ArchitectureOutputs, LayerBuilder, ResolvedOptions } from './base.js';

/** ASPP dilation rates for an output stride. */
export function asppRates(outputStride: 8 | 16): [number, number, number] {
  return outputStride === 8 ? [2, 4, 6] : [1, 2, 3];
}

export const deeplabv3: Architecture = {
  name: 'deeplabv3',
  description: 'DeepLabV3-style: light depthwise-separable backbone (output stride 8, or 16), ASPP 1x1 + 3x3 rates 2/4/6 + image pooling, bilinear up',
  sizeMultiple: (o) => o.outputStride,
  build(input: tf.SymbolicTensor, b: LayerBuilder, o: ResolvedOptions): ArchitectureOutputs {
    const os = o.outputStride;
    const dil = os === 8 ? 2 : 1;
    let x = b.convBnRelu(input, b.ch(16), 'stem', { strides: 2 });
    x = b.dwSep(x, b.ch(32), 'block1', { strides: 2 });
    x = b.dwSep(x, b.ch(64), 'block2', { strides: 2 });
    x = b.dwSep(x, b.ch(64), 'block3');
    const mid = x;
    x = b.dwSep(x, b.ch(128), 'block4', os === 16 ? { strides: 2 } : { rate: dil });
    x = b.dwSep(x, b.ch(128), 'block5', { rate: dil });
    x = b.dwSep(x, b.ch(128), 'block6', { rate: dil });

    const c = b.ch(64);
    const branches = [b.convBnRelu(x, c, 'aspp_1x1', { kernel: 1 })];
    asppRates(os).forEach((rate, i) => branches.push(b.convBnRelu(x, c, `aspp_r${rate}_${i + 1}`, { rate })));
    let pool = tf.layers.globalAveragePooling2d({ name: 'aspp_pool_gap' }).apply(x) as tf.SymbolicTensor;
    pool = tf.layers.reshape({ targetShape: [1, 1, b.ch(128)], name: 'aspp_pool_reshape' }).apply(pool) as tf.SymbolicTensor;
    pool = tf.layers
      .conv2d({ filters: c, kernelSize: 1, useBias: true, activation: 'relu', kernelInitializer: b.convInit(), name: 'aspp_pool_conv' })
      .apply(pool) as tf.SymbolicTensor;
    // Broadcast [N, 1, 1, c] to the feature size with stock layers only: pool + (1×1 branch × 0). Adding
    // zeros is exact (the branch is a finite ReLU output) and Add broadcasts the 1×1 map over H × W.
    const zeros = tf.layers.rescaling({ scale: 0, offset: 0, name: 'aspp_pool_zeros' }).apply(branches[0]!) as tf.SymbolicTensor;
    branches.push(tf.layers.add({ name: 'aspp_pool_broadcast' }).apply([pool, zeros]) as tf.SymbolicTensor);

    let y = b.concat(branches, 'aspp_concat');
    y = b.convBnRelu(y, c, 'aspp_project', { kernel: 1 });
    const main = b.upsample(b.classifier(y, o.numClasses, 'logits'), os, 'logits_up');
    const aux = o.aux ? b.auxHead(mid, o.numClasses, 8) : undefined;
    return { main, aux };
  },
};
