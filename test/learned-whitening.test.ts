import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { chooseKey } from '../src/index/key-choice.js';
import { KEY_RULE, type EditedCopies } from '../src/index/key-signals.js';
import { keyIdOf } from '../src/index/active-key.js';
import { cholesky, type EditPairs } from '../src/ml/learned-whitening.js';
import { fitLearnedWhiteningKey, fitPcaKey, keyKindOf } from '../src/ml/linear-key.js';
import { loadVae, saveVae } from '../src/ml/vae-files.js';
import type { VaeModel } from '../src/ml/vae-model.js';
import { mulberry32 } from '../src/util/random.js';
import { tempDir } from './helpers/temp-dir.js';

const D = 16;
const N = 240;
const L = 4;
const rand = mulberry32(5);
const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

/**
 * Twelve clusters that differ in dimensions 4-7 (what an image shows), plus a large nuisance in dimensions 0-3 that
 * an edit redraws (what an edit changes): the nuisance has the most variance, so PCA-4 keeps it, while the edit pairs
 * tell the learned whitening that those dimensions do not identify an image.
 */
const centres = Array.from({ length: 12 }, () => Array.from({ length: 4 }, () => 2 * gauss()));
function image(cluster: number, out: Float32Array, o: number): void {
  for (let k = 0; k < D; k++) out[o + k] = k < 4 ? 4 * gauss() : k < 8 ? 10 + centres[cluster][k - 4] + 0.3 * gauss() : 0.2 * gauss();
}
function edit(row: Float32Array, from: number, out: Float32Array, o: number): void {
  for (let k = 0; k < D; k++) out[o + k] = k < 4 ? 4 * gauss() : row[from + k] + 0.05 * gauss();
}

const features = new Float32Array(N * D);
for (let i = 0; i < N; i++) image(i % 12, features, i * D);
const pairs: EditPairs = { original: features.slice(), edited: new Float32Array(N * D), count: N };
for (let i = 0; i < N; i++) edit(features, i * D, pairs.edited, i * D);

/** Mean squared distance of each pair in the key over the mean squared distance between random rows. */
function pairSpread(model: VaeModel): number {
  const a = model.encode(pairs.original, N);
  const b = model.encode(pairs.edited, N);
  let pair = 0;
  let other = 0;
  for (let i = 0; i < N; i++) {
    const j = (i * 7 + 3) % N;
    for (let r = 0; r < L; r++) {
      pair += (a[i * L + r] - b[i * L + r]) ** 2;
      other += (a[i * L + r] - a[j * L + r]) ** 2;
    }
  }
  return pair / other;
}

test('cholesky: L·Lᵀ gives the matrix back, and a matrix that is not positive definite is refused', () => {
  const a = Float64Array.from([4, 2, 2, 3]);
  assert.deepEqual(Array.from(cholesky(Float64Array.from(a), 2)), [2, 0, 1, Math.SQRT2]);
  assert.throws(() => cholesky(Float64Array.from([1, 2, 2, 1]), 2), RangeError);
});

test('learned whitening: an edit’s pairs end far closer together in the key than under PCA of the same rows', () => {
  const pca = fitPcaKey(features, N, D, { components: L, shrinkage: null, seed: 1 });
  const lw = fitLearnedWhiteningKey(features, N, D, pairs, { components: L, lambda: 0.3, seed: 1 });
  const [pcaSpread, lwSpread] = [pairSpread(pca), pairSpread(lw)];
  assert.ok(pcaSpread > 0.5, `PCA keeps the nuisance the edit redraws: ${pcaSpread}`);
  assert.ok(lwSpread < 0.1 * pcaSpread, `learned whitening ${lwSpread} against PCA ${pcaSpread}`);
});

test('a learned-whitening key round-trips through save and load with its kind, and is named for what it is', async () => {
  const lw = fitLearnedWhiteningKey(features, N, D, pairs, { components: L, lambda: 0.3, seed: 1 });
  assert.match(lw.meta.id, /^lw4-/);
  assert.equal(keyKindOf(lw), 'learned-whitening');
  const dir = join(await tempDir(), 'vae', lw.meta.id);
  await saveVae(lw, dir);
  const loaded = await loadVae(dir);
  assert.equal(keyKindOf(loaded), 'learned-whitening');
  assert.equal(loaded.meta.shrinkage, 0.3);
  assert.deepEqual(loaded.encode(features, N), lw.encode(features, N));
  assert.equal(keyIdOf({ kind: 'vae', vaeId: lw.meta.id }), lw.meta.id, 'a linear key keeps its own name, not vae-…');
});

test('key choice: the learned whitening wins when its edited copies find their originals most often', () => {
  const pca = fitPcaKey(features, N, D, { components: L, shrinkage: null, seed: 1 });
  const lw = fitLearnedWhiteningKey(features, N, D, pairs, { components: L, lambda: 0.3, seed: 1 });
  // Copies made by the same kind of edit (the gate's edits are others, but of the same nature: a redrawn nuisance).
  const copies = new Float32Array(N * D);
  for (let i = 0; i < N; i++) edit(features, i * D, copies, i * D);
  const edited: EditedCopies = { features: copies, count: N, targets: Int32Array.from({ length: N }, (_, i) => i) };
  // Both pass this rule, so the choice is the edit recall's (the default's 95 % of raw refuses PCA outright here).
  const rule = { ...KEY_RULE, minOverlapVsRaw: 0, minEditRecallVsRaw: 0 };
  const choice = chooseKey(features, N, null, [pca, lw], edited, rule);
  assert.ok(choice.candidates.every((c) => c.failure === null), choice.reason);
  assert.ok(choice.candidates[1].signals.editRecall! > choice.candidates[0].signals.editRecall!, choice.reason);
  assert.equal(choice.chosen, lw, choice.reason);
  assert.equal(choice.candidates[1].kind, 'learned-whitening');
  assert.match(choice.reason, /Switched to the whitening learned from edited copies, Lw-4/);
});
