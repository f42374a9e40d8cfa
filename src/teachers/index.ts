// Teachers: TF.js or ONNX models that give per-pixel class probabilities, with test-time augmentation.
export {
  openTeacher,
  teacherFingerprint,
  type Teacher,
  type TeacherImage,
  type TeacherOptions,
  type TeacherOutputs,
  type TensorLayout,
} from './teacher.js';
export { parseTta, resolveTta, formatTta, NO_TTA, type TtaOptions, type ResolvedTta } from './tta.js';
export { ONNXRUNTIME_INSTALL_HINT } from './onnx.js';
