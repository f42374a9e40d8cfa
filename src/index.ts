// The softseg library: everything a command does is importable from here.
export * from './errors.js';
export * from './random.js';
export * from './losses/index.js';
export * from './labels/index.js';
export * from './metrics/index.js';
export * from './backends/index.js';
export * from './models/index.js';
export * from './engine/index.js';
export * from './data/index.js';
export * from './augment/index.js';
export * from './inference/index.js';
export * from './recipes/index.js';
export * from './cache/index.js';
export { openTeacher, teacherFingerprint, parseTta, resolveTta, formatTta, NO_TTA, ONNXRUNTIME_INSTALL_HINT } from './teachers/index.js';
export type { Teacher, TeacherImage, TeacherOptions, TeacherOutputs, TensorLayout, TtaOptions, ResolvedTta } from './teachers/index.js';
export { checkCase, checkVectorFile, readVectorFile, DEFAULT_TOLERANCE, SUPPORTED_KINDS } from './reference/vectors.js';
export type { CaseResult, Tolerance, VectorCase, VectorFile } from './reference/vectors.js';
export { buildReport, gatherReport, renderReport } from './report/index.js';
