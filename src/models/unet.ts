// U-Net: an encoder of conv3×3+BN+ReLU pairs with a centred 3×3 stride-2 max-pool between stages, a decoder that
// upsamples ×2 (bilinear), concatenates the skip and applies one conv3×3+BN+ReLU per level, and a
// 1×1 classifier. `unet` (the teacher) has stages 32-64-128-256, `unet-lite` 16-32-64-128.
// Three poolings: output stride 8, so inputs must be multiples of 8. The aux head sits on the
// bottleneck (stride 8).
import type { Architecture, ArchitectureOutputs, LayerBuilder, ResolvedOptions } from './base.js';
import type * as tf from '@tensorflow/tfjs';

function unetArchitecture(name: string, stages: readonly number[], description: string): Architecture {
  const depth = stages.length - 1; // number of poolings
  return {
    name,
    description,
    sizeMultiple: () => 2 ** depth,
    build(input: tf.SymbolicTensor, b: LayerBuilder, o: ResolvedOptions): ArchitectureOutputs {
      const skips: tf.SymbolicTensor[] = [];
      let x = input;
      stages.forEach((c, i) => {
        if (i > 0) x = b.maxPool(x, `enc${i + 1}_pool`);
        x = b.convBnRelu(x, b.ch(c), `enc${i + 1}_a`);
        x = b.convBnRelu(x, b.ch(c), `enc${i + 1}_b`);
        skips.push(x);
      });
      const bottleneck = x;
      for (let i = depth - 1; i >= 0; i--) {
        x = b.upsample(x, 2, `dec${i + 1}_up`);
        x = b.concat([x, skips[i]!], `dec${i + 1}_concat`);
        x = b.convBnRelu(x, b.ch(stages[i]!), `dec${i + 1}`);
      }
      const main = b.classifier(x, o.numClasses, 'logits');
      const aux = o.aux ? b.auxHead(bottleneck, o.numClasses, 2 ** depth) : undefined;
      return { main, aux };
    },
  };
}

export const unet = unetArchitecture(
  'unet',
  [32, 64, 128, 256],
  'U-Net (teacher): 4 stages 32-64-128-256, two conv3x3+BN+ReLU per stage, bilinear x2 up + skip concat + conv3x3 per level, 1x1 head',
);

export const unetLite = unetArchitecture(
  'unet-lite',
  [16, 32, 64, 128],
  'U-Net lite: 4 stages 16-32-64-128, two conv3x3+BN+ReLU per stage, bilinear x2 up + skip concat + conv3x3 per level, 1x1 head',
);
