/**
 * The teacher preprocessing flags `label`, `cache verify` (and anything else that opens a teacher) share:
 * they enter the teacher's fingerprint, so the same flags must be given wherever one cache is used. Declared
 * once in the option schema (src/recipes/recipe-options.ts), where distill and ssl take them too.
 */
import type { OptionFlag } from '@oclif/core/interfaces';
import type { TeacherPreprocessingConfig } from '../recipes/distill.js';
import { TEACHER_PREPROCESSING_OPTIONS } from '../recipes/recipe-options.js';
import { flagsFromSchema } from './option-flags.js';

export const teacherPreprocessingFlags = flagsFromSchema(TEACHER_PREPROCESSING_OPTIONS) as Record<keyof TeacherPreprocessingConfig, OptionFlag<string | undefined>>;

export { teacherOptionsFromFlags } from '../teachers/preprocessing.js';
