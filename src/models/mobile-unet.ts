// mobile-unet (the student): a MobileNet-style encoder — conv3×3 stride-2 stem to 16 channels, then
// depthwise-separable blocks 16→32 s1, 32→64 s2, 64→64, 64→128 s2, 128→128 ×2 — a 1×1 classifier at
// stride 8 and one bilinear ×8 upsampling to input resolution. Only built-in layers, so its
// model.json loads in a browser with plain TensorFlow.js. The aux head sits on the 64-channel
// stride-4 feature (after the 64→64 block).
import type { Architecture, ArchitectureOutputs, LayerBuilder, ResolvedOptions } from './base.js';
import type * as tf from '@tensorflow/tfjs';

export const mobileUnet: Architecture = {
  name: 'mobile-unet',
  description: 'Mobile student: conv3x3 s2 stem 16, depthwise-separable blocks 16-32-64-64-128-128-128 (stride 8), 1x1 head, bilinear x8 up',
  sizeMultiple: () => 8,
  build(input: tf.SymbolicTensor, b: LayerBuilder, o: ResolvedOptions): ArchitectureOutputs {
    let x = b.convBnRelu(input, b.ch(16), 'stem', { strides: 2 });
    x = b.dwSep(x, b.ch(32), 'block1');
    x = b.dwSep(x, b.ch(64), 'block2', { strides: 2 });
    x = b.dwSep(x, b.ch(64), 'block3');
    const mid = x;
    x = b.dwSep(x, b.ch(128), 'block4', { strides: 2 });
    x = b.dwSep(x, b.ch(128), 'block5');
    x = b.dwSep(x, b.ch(128), 'block6');
    const main = b.upsample(b.classifier(x, o.numClasses, 'logits'), 8, 'logits_up');
    const aux = o.aux ? b.auxHead(mid, o.numClasses, 4) : undefined;
    return { main, aux };
  },
};
