// Teachers: TF.js or ONNX models that give per-pixel class probabilities, with test-time augmentation.
export {
  openTeacher,
  teacherFingerprint,
  type Teacher,
  type TeacherImage,
  type TeacherKind,
  type TeacherFormat,
  type TeacherOptions,
  type TeacherOutputs,
  type TeacherMetadata,
  type TensorLayout,
} from './teacher.js';
export { parseTta, resolveTta, formatTta, ttaViews, applyTta, NO_TTA, type TtaOptions, type ResolvedTta, type TtaView } from './tta.js';
export { resizeBilinear, flipHorizontal, softmaxInPlace } from './ops.js';
export { loadOnnxRuntime, onnxMetadataProps, setOnnxRuntimeLoaderForTesting, ONNXRUNTIME_INSTALL_HINT } from './onnx.js';
