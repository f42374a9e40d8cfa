// The option schema: one declaration gives the defaults, the checks (flags, config files, library callers) and
// the merge order defaults < config file < flags typed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkConfigFile, checkOptions, checkValue, defaultsOf, mergeOptions } from '../../src/recipes/options.js';
import { DISTILL_OPTIONS, SSL_OPTIONS, TRAIN_OPTIONS } from '../../src/recipes/recipe-options.js';
import { TRAIN_DEFAULTS } from '../../src/recipes/supervised.js';
import { SoftsegError } from '../../src/errors.js';

const usage = (pattern: RegExp) => (e: unknown) => e instanceof SoftsegError && e.exitCode === 2 && pattern.test(e.oneLine());

test('defaults come from the schema, once', () => {
  assert.equal(TRAIN_DEFAULTS.lr, 1e-3);
  assert.equal(TRAIN_DEFAULTS.model, 'unet-lite');
  assert.equal(defaultsOf(DISTILL_OPTIONS).model, 'mobile-unet');
  assert.equal(defaultsOf(DISTILL_OPTIONS).classThreshold, 0.01);
  assert.deepEqual(defaultsOf(SSL_OPTIONS).unlabeled, []);
  assert.equal(defaultsOf(SSL_OPTIONS).confidenceThreshold, undefined);
  assert.ok(!('steps' in TRAIN_DEFAULTS), 'a key without a default is left out (undefined: decided later)');
  // train keeps softseg's choices; distill and ssl default to plain PyTorch's (measured better there, bench/README.md);
  // their upsampling is decided by the run (--init's model's, else half-pixel).
  const pick = (c: object) => { const { weightDecay, weightDecayAll, upsampling, maskSampling } = c as Record<string, unknown>; return { weightDecay, weightDecayAll, upsampling, maskSampling }; };
  assert.deepEqual(pick(TRAIN_DEFAULTS), { weightDecay: 1e-4, weightDecayAll: false, upsampling: 'aligned', maskSampling: 'centre' });
  for (const defaults of [defaultsOf(DISTILL_OPTIONS), defaultsOf(SSL_OPTIONS)]) assert.deepEqual(pick(defaults), { weightDecay: 1e-2, weightDecayAll: true, upsampling: undefined, maskSampling: 'floor' });
});

test('checkValue: numbers from strings, ranges with open and closed ends, choices, lists', () => {
  assert.equal(checkValue(TRAIN_OPTIONS.lr, '0.5', '--lr'), 0.5);
  assert.throws(() => checkValue(TRAIN_OPTIONS.lr, 0, '--lr'), usage(/^--lr must be a number in \(0, 1\], got 0$/));
  assert.throws(() => checkValue(TRAIN_OPTIONS.crop, 100000, '--crop'), usage(/^--crop must be an integer in \[8, 4096\], got 100000$/));
  assert.throws(() => checkValue(TRAIN_OPTIONS.batchSize, 2.5, 'batchSize'), usage(/^batchSize must be an integer ≥ 1, got 2.5$/));
  assert.throws(() => checkValue(TRAIN_OPTIONS.loss, 'focal', 'loss'), usage(/^loss must be one of ce, jml, ce\+jml, got "focal"$/));
  assert.throws(() => checkValue(TRAIN_OPTIONS.bls, 'yes', 'bls'), usage(/^bls must be true or false, got yes$/));
  assert.deepEqual(checkValue(DISTILL_OPTIONS.unlabeled, 'a', 'unlabeled'), ['a']);
});

test('a config file: unknown keys and bad values name the file and key; old keys are renamed with a warning', () => {
  assert.throws(() => checkConfigFile(TRAIN_OPTIONS, { learningRate: 1 }, 'run.yaml'), usage(/^run\.yaml: unknown option "learningRate" — known options: /));
  assert.throws(() => checkConfigFile(TRAIN_OPTIONS, { lr: 2 }, 'run.yaml'), usage(/^run\.yaml: lr must be a number in \(0, 1\], got 2$/));
  const { values, warnings } = checkConfigFile(SSL_OPTIONS, { threshold: 0.9, lr: '0.01' }, 'ssl.yaml');
  assert.deepEqual(values, { confidenceThreshold: 0.9, lr: 0.01 });
  assert.deepEqual(warnings, ['ssl.yaml: "threshold" is deprecated and will be removed in the next release; use "confidenceThreshold"']);
  assert.deepEqual(checkConfigFile(DISTILL_OPTIONS, { threshold: 0.1 }, 'kd.yaml').values, { classThreshold: 0.1 });
});

test('merge: defaults < file < flags, where an undefined flag is one the user did not type', () => {
  const c = mergeOptions(TRAIN_OPTIONS, { lr: 0.01, bls: true, batchSize: 4 }, { lr: undefined, bls: undefined, 'batch-size': 2, data: 'd' });
  assert.equal(c.lr, 0.01);
  assert.equal(c.bls, true);
  assert.equal(c.batchSize, 2);
  assert.equal(c.data, 'd');
  assert.equal(c.optimizer, 'adamw');
});

test('a library caller\'s configuration is checked with the flag names', () => {
  assert.throws(() => checkOptions(TRAIN_OPTIONS, { ...TRAIN_DEFAULTS, flip: 3 }), usage(/^--flip must be a number in \[0, 1\], got 3$/));
  assert.throws(() => checkOptions(SSL_OPTIONS, { ...defaultsOf(SSL_OPTIONS), collapsePatience: 0 }), usage(/^collapsePatience must be an integer ≥ 1, got 0$/));
  checkOptions(TRAIN_OPTIONS, { ...TRAIN_DEFAULTS, crop: 0 }); // 0, the default: the crop is decided from the data
});
