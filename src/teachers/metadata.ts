// Reading what a teacher says about itself (softseg.json-like metadata) and checking its input layout.
import type { Normalization } from '../augment/normalize.js';
import { SoftsegError } from '../errors.js';
import type { TeacherMetadata, TensorLayout } from './teacher.js';

/** Picks the teacher-relevant fields out of a softseg.json-like object, checking their types. */
export function metadataFromJson(raw: Record<string, unknown>, file: string): TeacherMetadata {
  const meta: TeacherMetadata = {};
  const bad = (field: string) => new SoftsegError(`bad "${field}" in the teacher metadata`, { file });
  if (raw.numClasses !== undefined) {
    if (!Number.isInteger(raw.numClasses)) throw bad('numClasses');
    meta.numClasses = raw.numClasses as number;
  }
  if (raw.classes !== undefined) {
    if (!Array.isArray(raw.classes) || !raw.classes.every((c) => typeof c === 'string')) throw bad('classes');
    meta.classes = raw.classes as string[];
  }
  if (raw.normalization !== undefined) {
    const n = raw.normalization as Partial<Normalization> | null;
    const ok = (v: unknown) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number');
    if (!n || !ok(n.mean) || !ok(n.std)) throw bad('normalization');
    meta.normalization = { mean: n.mean!, std: n.std! };
  }
  if (raw.layout !== undefined) {
    if (raw.layout !== 'nchw' && raw.layout !== 'nhwc') throw bad('layout');
    meta.layout = raw.layout;
  }
  if (raw.outputs !== undefined) {
    if (raw.outputs !== 'logits' && raw.outputs !== 'probabilities') throw bad('outputs');
    meta.outputs = raw.outputs;
  }
  return meta;
}

/** Resolves the layout of a rank-4 image input [N, a, b, c] against the option / metadata. */
export function resolveLayout(shape: readonly (number | string | null)[], wanted: TensorLayout | undefined, fallback: TensorLayout, file: string): TensorLayout {
  if (shape.length !== 4) {
    throw new SoftsegError(`the teacher's input has rank ${shape.length} (shape [${shape.map(String).join(', ')}]), expected a 4-D image batch`, { file });
  }
  const c1 = typeof shape[1] === 'number' && shape[1] > 0 ? shape[1] : null;
  const c3 = typeof shape[3] === 'number' && shape[3] > 0 ? shape[3] : null;
  const shapeText = `[${shape.map((d) => (d === null || (typeof d === 'number' && d < 0) ? '?' : String(d))).join(', ')}]`;
  const mismatch = (name: TensorLayout, other: TensorLayout, dim: string, own: number | null, theirs: number | null) => {
    const looksOther = theirs === 3 && own !== 3;
    if (!looksOther && (own === null || own === 3)) return;
    const what = looksOther ? `it looks ${other.toUpperCase()}` : `it has ${own} channels in its ${dim} dimension, not 3`;
    throw new SoftsegError(`--layout ${name}, but the model's input ${shapeText} does not match: ${what}`, {
      file,
      hint: looksOther ? `pass --layout ${other}, or omit --layout` : 'the teacher must take 3-channel RGB images',
    });
  };
  if (wanted === 'nchw') mismatch('nchw', 'nhwc', 'second', c1, c3);
  if (wanted === 'nhwc') mismatch('nhwc', 'nchw', 'last', c3, c1);
  if (wanted) return wanted;
  if (c1 === 3 && c3 !== 3) return 'nchw';
  if (c3 === 3 && c1 !== 3) return 'nhwc';
  if (c1 !== null && c3 !== null) throw new SoftsegError(`the model's input ${shapeText} has no 3-channel dimension`, { file, hint: 'the teacher must take RGB images' });
  return fallback;
}

