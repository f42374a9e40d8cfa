// Usage errors — a flag with a bad value, flags that do not go together — exit with code 2 and one line
// naming the flag, for flags and config-file values alike; `softseg help` works as --help does.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateShapesDataset } from '../../src/data/synthetic.js';
import { softseg } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'softseg-usage-'));

before(async () => {
  await generateShapesDataset(join(root, 'data'), { count: 4, size: 32, numClasses: 4, seed: 1 });
});

/** `train` on the small data set; flags in `extra` replace the defaults given here. */
const train = (...extra: string[]) => {
  const base = ['--data', join(root, 'data'), '--out', join(root, 'run'), '--steps', '2', '--crop', '32', '--backend', 'wasm'];
  const args: string[] = [];
  for (let i = 0; i < base.length; i += 2) if (!extra.includes(base[i]!)) args.push(base[i]!, base[i + 1]!);
  return ['train', ...args, ...extra];
};

const cases: [string, string[], RegExp][] = [
  ['--lr -1', train('--lr', '-1'), /--lr must be a number in \(0, 1\], got -1/],
  ['--lr 1e9', train('--lr', '1e9'), /--lr must be a number in \(0, 1\], got 1e9/],
  ['--lr abc', train('--lr', 'abc'), /--lr must be a number in \(0, 1\], got abc/],
  ['--flip 2', train('--flip', '2'), /--flip must be a number in \[0, 1\], got 2/],
  ['--crop 100000', train('--crop', '100000'), /--crop must be an integer in \[8, 4096\], got 100000/],
  ['--crop 36 (mobile-unet needs a multiple of 16)', train('--crop', '36', '--model', 'mobile-unet'), /--crop 36 is not a multiple of/],
  ['--label-smoothing 1', train('--label-smoothing', '1'), /--label-smoothing must be a number in \[0, 1\), got 1/],
  ['--bls-kernel 4', train('--bls', '--bls-kernel', '4'), /--bls-kernel must be odd, got 4/],
  ['--weight-decay -0.1', train('--weight-decay', '-0.1'), /--weight-decay must be a number in \[0, 1\], got -0.1/],
  ['--steps and --epochs', train('--epochs', '2', '--steps', '2'), /give --steps or --epochs, not both/],
  ['--batch-size 0', train('--batch-size', '0'), /--batch-size must be an integer ≥ 1, got 0/],
  ['distill --class-threshold 5', ['distill', '--teacher', 't', '--cache', 'c', '--data', join(root, 'data'), '--out', join(root, 'kd'), '--class-threshold', '5', '--backend', 'wasm'], /--class-threshold must be a number in \[0, 1\), got 5/],
  ['distill --threshold 5 (the deprecated name of --class-threshold)', ['distill', '--teacher', 't', '--cache', 'c', '--data', join(root, 'data'), '--out', join(root, 'kd'), '--threshold', '5', '--backend', 'wasm'], /--class-threshold must be a number in \[0, 1\), got 5/],
  ['ssl --threshold 0 (the deprecated name of --confidence-threshold)', ['ssl', '--teacher', 't', '--cache', 'c', '--data', join(root, 'data'), '--unlabeled', join(root, 'data'), '--out', join(root, 'ssl'), '--threshold', '0', '--backend', 'wasm'], /--confidence-threshold must be a number in \(0, 1\], got 0/],
  ['distill --temperature 0', ['distill', '--teacher', 't', '--cache', 'c', '--data', join(root, 'data'), '--out', join(root, 'kd'), '--temperature', '0', '--backend', 'wasm'], /--temperature must be a number > 0, got 0/],
  ['ssl --cutmix 2', ['ssl', '--teacher', 't', '--cache', 'c', '--data', join(root, 'data'), '--unlabeled', join(root, 'data'), '--out', join(root, 'ssl'), '--cutmix', '2', '--backend', 'wasm'], /--cutmix must be a number in \[0, 1\], got 2/],
  ['ssl without a teacher', ['ssl', '--data', join(root, 'data'), '--unlabeled', join(root, 'data'), '--out', join(root, 'ssl'), '--backend', 'wasm'], /ssl needs a teacher/],
];

for (const [name, args, message] of cases) {
  test(`usage error, exit 2: ${name}`, async () => {
    const r = await softseg(...args);
    assert.equal(r.code, 2, r.stderr);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('Error:'));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, message);
  });
}

test('config-file values are checked as flags are: an unknown loss is refused, not replaced by the default', async () => {
  const cfg = join(root, 'bad.yaml');
  await writeFile(cfg, 'loss: focal\n');
  const r = await softseg(...train('--config', cfg));
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^Error: .*bad\.yaml: loss must be one of ce, jml, ce\+jml, got "focal"$/m);
  await writeFile(cfg, 'lr: -1\nlabel-smoothing: 0.1\n');
  const lr = await softseg(...train('--config', cfg));
  assert.equal(lr.code, 2, lr.stderr);
  assert.match(lr.stderr, /^Error: .*bad\.yaml: lr must be a number in \(0, 1\], got -1$/m);
  const flagWins = await softseg(...train('--config', cfg, '--lr', '2'));
  assert.match(flagWins.stderr, /^Error: --lr must be a number in \(0, 1\], got 2$/m, 'a flag typed on the command line is named as the flag');
  await writeFile(cfg, 'learning-rate: 0.1\n');
  const unknown = await softseg(...train('--config', cfg));
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(unknown.stderr, /^Error: .*bad\.yaml: unknown option "learningRate" — known options: .*\blr\b/m);
  await writeFile(cfg, 'flip: 2\n');
  const flip = await softseg(...train('--config', cfg));
  assert.equal(flip.code, 2, flip.stderr);
  assert.match(flip.stderr, /^Error: .*bad\.yaml: flip must be a number in \[0, 1\], got 2$/m, 'augmentation values are checked like the rest');
  await writeFile(cfg, 'bls: true\nlabel-smoothing: 0.1\n');
  const both = await softseg(...train('--config', cfg));
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /^Error: .*bad\.yaml: bls and labelSmoothing are alternatives; choose one$/m, 'a boolean from the file is not reset by a flag the user did not type');
  await writeFile(cfg, 'steps: [1]\n');
  const list = await softseg(...train('--config', cfg));
  assert.equal(list.code, 2, list.stderr);
  assert.match(list.stderr, /^Error: .*bad\.yaml: steps must be an integer ≥ 1, got \[1\]$/m);
});

test('a flag oclif itself checks (an integer flag of another command) is one line naming the flag, exit 2', async () => {
  const r = await softseg('label', '--teacher', 't', '--images', 'i', '--cache', 'c', '--batch-size', '0');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^Error: --batch-size: Expected an integer greater than or equal to 1 but received: 0 \(see --help\)$/m);
});

test('renamed flags and config keys: the old name still works for one release, with a one-line warning', async () => {
  const kd = (...extra: string[]) => ['distill', '--teacher', join(root, 'missing-teacher'), '--cache', join(root, 'c'), '--data', join(root, 'data'), '--out', join(root, 'kd-alias'), '--steps', '1', '--backend', 'wasm', ...extra];
  const flag = await softseg(...kd('--threshold', '0.5'));
  assert.match(flag.stderr, /^Warning: The "--threshold" flag has been deprecated\. Use "--class-threshold" instead\.$/m);
  assert.match(flag.stderr, /teacher not found/, 'the run went on past the options');
  const cfg = join(root, 'old-keys.yaml');
  await writeFile(cfg, 'threshold: 0.5\n');
  const key = await softseg(...kd('--config', cfg));
  assert.match(key.stderr, /^Warning: .*old-keys\.yaml: "threshold" is deprecated and will be removed in the next release; use "classThreshold"$/m);
  assert.match(key.stderr, /teacher not found/);
  const models = await softseg('models', '--classes', '5', '--size', '32');
  assert.equal(models.code, 0, models.stderr);
  assert.match(models.stderr, /^Warning: The "--classes" flag has been deprecated\. Use "--num-classes" instead\.$/m);
  assert.match(models.stdout, /at 32×32, 5 classes/);
  const width = await softseg('models', '--width', '0');
  assert.equal(width.code, 2, width.stderr);
  assert.match(width.stderr, /^Error: --width must be a number in \(0, 16\], got 0$/m);
  const verify = await softseg('cache', 'verify', '--help');
  assert.match(verify.stdout, /--samples=<value>/);
  await writeFile(cfg, 'threshold: 5\n');
  const bad = await softseg(...kd('--config', cfg));
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^Error: .*old-keys\.yaml: classThreshold must be a number in \[0, 1\), got 5$/m);
});

test('--help shows each default from the schema', async () => {
  const flat = (s: string) => s.replace(/\s+/g, ' ');
  const help = flat((await softseg('train', '--help')).stdout);
  assert.match(help, /--lr=<value> \[default: 0\.001\] Peak learning rate\./);
  assert.match(help, /--crop=<value> \[default: 128, or the images' size when smaller\]/);
  const ssl = flat((await softseg('ssl', '--help')).stdout);
  assert.match(ssl, /--confidence-threshold=<value> \[default: 0\.95 with --pseudo hard, none with soft\]/);
  assert.match(ssl, /--model=<value> \[default: mobile-unet\]/);
  assert.doesNotMatch(ssl + help, /method\.md/);
});

test('softseg help lists the commands, softseg help COMMAND shows its help, an unknown one is a usage error', async () => {
  const all = await softseg('help');
  assert.equal(all.code, 0, all.stderr);
  for (const c of ['train', 'distill', 'ssl', 'label', 'eval', 'predict', 'demo', 'cache']) assert.match(all.stdout, new RegExp(`^\\s+${c}\\s`, 'm'));
  const one = await softseg('help', 'train');
  assert.equal(one.code, 0, one.stderr);
  assert.equal(one.stdout, (await softseg('train', '--help')).stdout);
  const sub = await softseg('help', 'cache', 'verify');
  assert.match(sub.stdout, /\$ softseg cache verify/);
  const none = await softseg('help', 'nope');
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^Error: no command "nope"; `softseg help` lists them$/m);
});
