/**
 * The options of `train`, `distill` and `ssl`, declared once (see options.ts): the flags, the defaults, the
 * config-file keys and their checks all come from here. Imports types only, so commands load it for --help
 * without loading TensorFlow.js.
 */
import type { OptionSchema, OptionSpec } from './options.js';
import type { TrainConfig } from './supervised.js';
import type { DistillConfig, TeacherPreprocessingConfig } from './distill.js';
import type { SslConfig } from './ssl.js';

/** The largest training crop: beyond it a batch no longer fits any backend (the wasm heap is 4 GB). */
export const MAX_CROP = 4096;

const AUG = 'AUGMENTATION';
const probability = (description: string): OptionSpec => ({ type: 'number', min: 0, max: 1, description, helpGroup: AUG });
const STRONG = 'STRONG VIEW';
const strongValue = (description: string): OptionSpec => ({ type: 'number', min: 0, max: 1, description, helpGroup: STRONG });

const UPSAMPLING = ['aligned', 'half-pixel'] as const;
const UPSAMPLING_HELP = 'How the model\'s bilinear upsampling samples: aligned (output pixel i reads feature i/f, where the stride-f features are centred) or half-pixel (PyTorch\'s F.interpolate(align_corners=False)).';
const MASK_SAMPLING = ['centre', 'floor'] as const;
const MASK_SAMPLING_HELP = 'How masks are resampled when scaled: centre (the pixel under each output pixel\'s centre, aligned with the bilinear image) or floor (PyTorch\'s F.interpolate(mode=\'nearest\'), up to half a pixel up-left of the image).';

export const TRAIN_OPTIONS: OptionSchema<TrainConfig> = {
  data: { type: 'string', description: 'Training data set folder (images/ + masks/).' },
  val: { type: 'string', description: 'Validation data set folder, evaluated periodically; picks best/.' },
  model: { type: 'string', default: 'unet-lite', description: 'Architecture (see `softseg models`).' },
  out: { type: 'string', description: 'Run directory.' },
  epochs: { type: 'integer', min: 1, description: 'Passes over the data (default 10 when --steps is not given).' },
  steps: { type: 'integer', min: 1, description: 'Optimizer steps (instead of --epochs).' },
  batchSize: { type: 'integer', default: 8, min: 1, description: 'Images per step.' },
  crop: {
    type: 'integer', default: 0, min: 8, max: MAX_CROP, defaultHelp: '128, or the images\' size when smaller', helpGroup: AUG,
    description: 'Training crop size (square; a multiple of the model\'s size multiple).',
  },
  lr: { type: 'number', default: 1e-3, min: 0, max: 1, ends: '(]', description: 'Peak learning rate.' },
  optimizer: { type: 'choice', options: ['adamw', 'sgd'], default: 'adamw', description: 'Optimizer.' },
  weightDecay: { type: 'number', default: 1e-4, min: 0, max: 1, description: 'Weight decay (decoupled for AdamW), on convolution kernels.' },
  weightDecayAll: {
    type: 'boolean', default: false,
    description: 'Apply --weight-decay to every parameter, biases and batch-norm γ/β too, as PyTorch\'s AdamW(model.parameters()) does.',
  },
  loss: { type: 'choice', options: ['ce', 'jml', 'ce+jml'], default: 'ce+jml', description: 'Loss: cross-entropy, Jaccard Metric Loss, or both.' },
  ceWeight: { type: 'number', default: 0.25, min: 0, description: 'Weight of the CE term with --loss ce+jml.' },
  jmlWeight: { type: 'number', default: 0.75, min: 0, description: 'Weight of the JML term with --loss ce+jml.' },
  jmlReduction: {
    type: 'choice', options: ['batch', 'image-class'], default: 'batch',
    description: 'JML averaged per batch (aligns with dataset mIoU) or per image and class (mIoU^I/mIoU^C).',
  },
  activeClasses: { type: 'choice', options: ['present', 'all'], default: 'present', description: 'Classes the JML term averages over.' },
  labelSmoothing: { type: 'number', default: 0, min: 0, max: 1, ends: '[)', description: 'Uniform label smoothing ε (0 = off).' },
  bls: { type: 'boolean', default: false, description: 'Boundary label smoothing: smooth labels only near class boundaries.' },
  blsKernel: { type: 'integer', default: 3, min: 1, max: 99, description: 'BLS window (odd).' },
  blsEpsilon: { type: 'number', default: 0.5, min: 0, max: 1, description: 'BLS ε on boundary pixels.' },
  width: { type: 'number', default: 1, min: 0, max: 16, ends: '(]', description: 'Width multiplier of the model.' },
  aux: { type: 'boolean', default: false, description: 'Add an auxiliary head (main + aux heads, as the method trains); predictions use the main head.' },
  upsampling: { type: 'choice', options: UPSAMPLING, default: 'aligned', description: UPSAMPLING_HELP },
  numClasses: { type: 'integer', min: 1, max: 256, description: 'Number of classes (overrides dataset.json; without it, a --val set whose dataset.json declares other classes than --data is an error).' },
  ignoreIndex: { type: 'integer', min: 0, max: 255, description: 'Mask value to ignore (default 255 or dataset.json).' },
  accumulate: { type: 'integer', default: 1, min: 1, description: 'Gradient accumulation: split each batch into K micro-batches (saves memory).' },
  warmupSteps: { type: 'integer', min: 0, description: 'Linear warm-up steps (default 5% of the run).' },
  evalEvery: { type: 'integer', min: 1, description: 'Validate every N steps (default: 5 times per run).' },
  checkpointEvery: { type: 'integer', min: 1, description: 'Checkpoint every N steps (default: 10 times per run).' },
  augment: {
    type: 'choice', options: ['default', 'strong', 'none'], default: 'default', helpGroup: AUG,
    description: 'Augmentation preset, a shorthand the flags below override: default = scale 0.75,1.25, flip 0.5; strong = scale 0.5,2, flip 0.5, jitter 0.5, grayscale 0.2, blur 0.5; none = no augmentation.',
  },
  scale: { type: 'text', helpGroup: AUG, description: 'Random scale range before the crop, LO,HI (e.g. 0.75,1.25), or none.' },
  flip: probability('Probability of a horizontal flip.'),
  maskSampling: { type: 'choice', options: MASK_SAMPLING, default: 'centre', helpGroup: AUG, description: MASK_SAMPLING_HELP },
  brightness: probability('Brightness jitter: factor in [1 − b, 1 + b].'),
  contrast: probability('Contrast jitter: factor in [1 − c, 1 + c].'),
  saturation: probability('Saturation jitter: factor in [1 − s, 1 + s].'),
  grayscale: probability('Probability of turning the image gray.'),
  blur: probability('Probability of a Gaussian blur (σ 0.1–2 px).'),
  seed: { type: 'integer', default: 0, min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER, description: 'Seed for initialisation, shuffling and augmentation.' },
  init: {
    type: 'string',
    description: 'Start from this trained model instead of random weights (fine-tuning, or training a finished run further as a new run): a run folder (its model/; or pass its best/) of the same --model and --width. With another class count the classifier starts fresh.',
  },
  skipBad: { type: 'boolean', default: false, description: 'Skip unreadable or inconsistent items (with a count and a list), before and during the run, instead of stopping.' },
  cacheImages: { type: 'boolean', default: false, description: 'Keep decoded images in memory (small data sets).' },
  resume: {
    type: 'boolean', default: false, exclusive: ['overwrite'],
    description: 'Continue the run in --out from its last checkpoint with the options it started with (its config.json; a differing option that shapes training is refused, paths and --eval-every/--checkpoint-every may change). An empty or missing --out starts a new run.',
  },
  overwrite: {
    type: 'boolean', default: false, exclusive: ['resume'],
    description: 'Replace the previous run in --out (its model, checkpoints and metrics are deleted first). Without --resume or --overwrite a non-empty --out is refused.',
  },
};

const TEACHER_GROUP = 'TEACHER PREPROCESSING (as given to `softseg label`; omitted: what the cache recorded for this teacher)';

/** The teacher preprocessing options (`label`, `cache verify`, and under TEACHER PREPROCESSING for distill/ssl). */
export const TEACHER_PREPROCESSING_OPTIONS: OptionSchema<TeacherPreprocessingConfig> = {
  size: { type: 'text', description: 'Run the teacher at this fixed size (S or HxW); default: the model\'s input size, or each image\'s own size.' },
  layout: { type: 'choice', options: ['nchw', 'nhwc'], description: 'Tensor layout of the teacher (default: from its input signature).' },
  mean: { type: 'text', description: 'Normalisation mean, comma-separated RGB on 0..1 (or 0..255); default: model metadata, else ImageNet.' },
  std: { type: 'text', description: 'Normalisation std, comma-separated RGB; default: model metadata, else ImageNet.' },
  tta: { type: 'text', description: 'Test-time augmentation averaged in probability space, e.g. flip or flip,scales=0.75,1,1.25.' },
  outputs: { type: 'choice', options: ['logits', 'probabilities'], description: 'What the teacher model outputs.' },
};

const inGroup = <T>(schema: OptionSchema<T>, helpGroup: string): OptionSchema<T> =>
  Object.fromEntries(Object.entries(schema).map(([k, s]) => [k, { ...(s as OptionSpec), helpGroup }])) as OptionSchema<T>;

/** What distill and ssl share beyond train's options. */
const STUDENT_TEACHER_OPTIONS = {
  model: { type: 'string', default: 'mobile-unet', description: 'Student architecture (see `softseg models`).' },
  teacher: { type: 'string', description: 'Teacher: a softseg run directory, a TF.js model.json folder, or an .onnx file.' },
  cache: { type: 'string', description: 'Teacher-output cache folder (filled by `softseg label`; misses are labelled on the fly).' },
  noTeacher: { type: 'boolean', default: false, description: 'A cache miss is an error instead of running the teacher.' },
  k: { type: 'integer', min: 1, max: 255, noFlag: true, description: 'Top-k classes kept per pixel when a miss is labelled on the fly.' },
  teacherClasses: { type: 'choice', options: ['present', 'all'], default: 'present', description: 'Classes of the JML teacher term: those the teacher gives > --class-threshold somewhere in the batch, or all.' },
  classThreshold: { type: 'number', default: 0.01, min: 0, max: 1, ends: '[)', description: 'Active-class threshold on teacher probabilities (the JML teacher term).' },
  // The student's defaults are plain PyTorch's choices (AdamW's decay 1e-2 on every parameter, F.interpolate's
  // half-pixel upsampling and its floor mask resampling): on the parity set they scored +0.4 (ssl, twelve seeds) and
  // +1.0 (kd, nine) mIoU over softseg's own, and +1.4 / +3.7 in the PyTorch twin (bench/README.md).
  weightDecay: { type: 'number', default: 1e-2, min: 0, max: 1, description: 'Weight decay (decoupled for AdamW), on every parameter unless --no-weight-decay-all.' },
  weightDecayAll: {
    type: 'boolean', default: true,
    description: 'On by default: --weight-decay applies to every parameter, biases and batch-norm γ/β too, as PyTorch\'s AdamW(model.parameters()) does; --no-weight-decay-all: convolution kernels only.',
  },
  upsampling: { type: 'choice', options: UPSAMPLING, defaultHelp: 'half-pixel, or --init\'s', description: UPSAMPLING_HELP },
  maskSampling: { type: 'choice', options: MASK_SAMPLING, default: 'floor', helpGroup: AUG, description: MASK_SAMPLING_HELP },
  ...inGroup(TEACHER_PREPROCESSING_OPTIONS, TEACHER_GROUP),
} satisfies Record<string, OptionSpec>;

export const DISTILL_OPTIONS: OptionSchema<DistillConfig> = {
  ...TRAIN_OPTIONS,
  ...STUDENT_TEACHER_OPTIONS,
  // distill's --threshold was this active-class threshold (ssl's --class-threshold); renamed to one name for both.
  classThreshold: { ...STUDENT_TEACHER_OPTIONS.classThreshold, deprecated: ['threshold'] },
  unlabeled: { type: 'list', description: 'Folder of unlabeled images (repeatable): teacher terms only.' },
  unlabeledRatio: { type: 'number', default: 0.5, min: 0, max: 1, ends: '[)', description: 'Share of each batch from --unlabeled.' },
  temperature: { type: 'number', default: 1, min: 0, ends: '()', description: 'Distillation temperature T: soft labels ∝ p^(1/T), KL scaled by T².' },
  kdLoss: { type: 'choice', options: ['kl+jml', 'kl', 'jml'], default: 'kl+jml', description: 'Teacher terms: temperature KL and JML, or one of them.' },
  labelWeight: { type: 'number', default: 0.5, min: 0, description: 'Weight of the ground-truth terms.' },
  teacherWeight: { type: 'number', default: 0.5, min: 0, description: 'Weight of the teacher terms.' },
};

export const SSL_OPTIONS: OptionSchema<SslConfig> = {
  ...TRAIN_OPTIONS,
  ...STUDENT_TEACHER_OPTIONS,
  unlabeled: { type: 'list', description: 'Folder of unlabeled images (repeatable).' },
  temperature: { type: 'number', default: 1, min: 0, ends: '()', description: 'Pseudo-label temperature T: p_t = softmax(t/T), KL scaled by T².' },
  ema: {
    type: 'number', min: 0, max: 1, ends: '()',
    description: 'Mean teacher instead of --teacher: EMA momentum of the student\'s weights, e.g. 0.999 (needs --init or --unlabeled-warmup).',
  },
  init: { ...TRAIN_OPTIONS.init, description: `${TRAIN_OPTIONS.init.description} With --ema the mean teacher starts there too.` },
  pseudo: { type: 'choice', options: ['soft', 'hard'], default: 'soft', description: 'Soft pseudo-labels (KL + JML) or hard argmax ones above --confidence-threshold (CE + JML).' },
  // ssl's --threshold was this confidence τ; renamed so that no flag name means two things.
  confidenceThreshold: {
    type: 'number', min: 0, max: 1, ends: '(]', deprecated: ['threshold'], defaultHelp: '0.95 with --pseudo hard, none with soft',
    description: 'Confidence threshold τ: pixels whose teacher confidence is below it get no pseudo-label.',
  },
  unlabeledWarmup: { type: 'integer', default: 0, min: 0, description: 'Supervised-only steps before the unlabeled loss ramps in (linearly, over as many steps).' },
  unlabeledWeight: { type: 'number', default: 1, min: 0, description: 'Weight λ_u of the unlabeled loss at full strength.' },
  unlabeledRatio: { type: 'number', default: 0.5, min: 0, max: 1, ends: '()', description: 'Share of each batch from --unlabeled.' },
  strongAug: {
    type: 'choice', options: ['strong', 'default'], default: 'strong', helpGroup: STRONG,
    description: 'Photometric augmentation preset of the student\'s view of unlabeled images (strong = jitter 0.5, grayscale 0.2, blur 0.5; default = none), a shorthand the flags below override.',
  },
  strongBrightness: strongValue('Brightness jitter of the strong view: factor in [1 − b, 1 + b].'),
  strongContrast: strongValue('Contrast jitter of the strong view: factor in [1 − c, 1 + c].'),
  strongSaturation: strongValue('Saturation jitter of the strong view: factor in [1 − s, 1 + s].'),
  strongGrayscale: strongValue('Probability of a gray strong view.'),
  strongBlur: strongValue('Probability of a Gaussian blur (σ 0.1–2 px) in the strong view.'),
  cutmix: { type: 'number', default: 0.5, min: 0, max: 1, description: 'Probability of CutMix per unlabeled image (0 = off).' },
  collapseShare: {
    type: 'number', default: 0.95, min: 0, max: 1, ends: '(]',
    description: 'Collapse guard (mean teacher): stop when one class takes more than this share of the student\'s predicted unlabeled pixels (1 = off).',
  },
  collapsePatience: { type: 'integer', default: 3, min: 1, noFlag: true, description: 'Consecutive collapsed checks before the collapse guard stops the run.' },
};
