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
  ['--lr 1e9', train('--lr', '1e9'), /--lr must be a number in \(0, 1\], got 1000000000/],
  ['--lr abc', train('--lr', 'abc'), /--lr must be a number, got abc/],
  ['--crop 100000', train('--crop', '100000'), /--crop must be an integer in \[8, 4096\], got 100000/],
  ['--crop 36 (mobile-unet needs a multiple of 16)', train('--crop', '36', '--model', 'mobile-unet'), /--crop 36 is not a multiple of/],
  ['--label-smoothing 1', train('--label-smoothing', '1'), /--label-smoothing must be a number in \[0, 1\), got 1/],
  ['--bls-kernel 4', train('--bls', '--bls-kernel', '4'), /--bls-kernel must be odd, got 4/],
  ['--weight-decay -0.1', train('--weight-decay', '-0.1'), /--weight-decay must be a number in \[0, 1\], got -0.1/],
  ['--steps and --epochs', train('--epochs', '2', '--steps', '2'), /give --steps or --epochs, not both/],
  ['--batch-size 0 (checked by the flag parser)', train('--batch-size', '0'), /Expected an integer greater than or equal to 1 but received: 0/],
  ['distill --threshold 5', ['distill', '--teacher', 't', '--cache', 'c', '--data', join(root, 'data'), '--out', join(root, 'kd'), '--threshold', '5', '--backend', 'wasm'], /--threshold must be a number in \[0, 1\), got 5/],
  ['distill --temperature 0', ['distill', '--teacher', 't', '--cache', 'c', '--data', join(root, 'data'), '--out', join(root, 'kd'), '--temperature', '0', '--backend', 'wasm'], /--temperature must be a number > 0, got 0/],
  ['ssl --cutmix 2', ['ssl', '--teacher', 't', '--cache', 'c', '--data', join(root, 'data'), '--unlabeled', join(root, 'data'), '--out', join(root, 'ssl'), '--cutmix', '2', '--backend', 'wasm'], /--cutmix must be a probability in \[0, 1\], got 2/],
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
  assert.match(unknown.stderr, /unknown option "learningRate" in .*bad\.yaml/);
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
