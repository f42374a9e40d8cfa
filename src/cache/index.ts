// The teacher-output cache: entry format (top-k soft labels / pseudo-labels, checksummed), the content-addressed store, fidelity checks.
export {
  CorruptEntryError, DEFAULT_COMPRESSION, DEFAULT_K, DEFAULT_SCHEME, ENTRY_VERSION, QUANT_SCHEMES,
  activeClassesOf, confidenceMap, decodeEntry, encodeEntry, parseHeader, reconstructPseudo, reconstructSoft, verifyEntryBytes,
  type CacheMode, type Compression, type DecodedEntry, type EncodeOptions, type EntryHeader, type QuantScheme, type TailOptions,
} from './format.js';
export {
  openCache, hashImageFile, teacherKey, ENTRY_EXTENSION,
  type TeacherCache, type CacheRecord, type GetOptions, type PutOptions, type EntryInfo, type EntryProblem, type CacheInfo,
  type TeacherSummary, type PruneOptions, type PruneResult, type VerifyResult,
} from './store.js';
export { DEFAULT_TAIL_KL_TARGET, DEFAULT_MAX_TAIL_RANK, type TailModel } from './tail-model.js';
export { createEntryEncoder, sharedEntryEncoder, type EntryEncoder } from './encoder.js';
export { readSoftCrop, type SoftCropRequest, type SoftCrop } from './reader.js';
export { hashImagesIn, type HashedImage } from './images.js';
export { entryFidelity, teacherFidelity, temperProbs, meanKl, type FidelityResult, type FidelityTeacher, type TeacherFidelityResult } from './fidelity.js';
