import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_VAE_HYPER } from '../src/ml/vae-hyper.js';
import { VAE_FORMAT, VaeModel } from '../src/ml/vae-model.js';
import { mulberry32 } from '../src/util/random.js';
import { isAppError } from '../src/errors.js';
import { chooseKeyInWorker } from '../src/index/key-check.js';
import { chooseKey } from '../src/index/key-choice.js';
import { KEY_RULE, keyRuleFailure, type EditedCopies, type JudgedPairs } from '../src/index/key-signals.js';
import { fitPcaKey, keyKindOf } from '../src/ml/linear-key.js';
import { fitPca, projectPca } from '../src/ml/pca.js';

const D = 16;
const H = 2 * D;
const L = 4;
const N = 120;

/**
 * Six clusters that differ only in dimensions 0-3; dimensions 4-15 are faint noise. Raw-feature neighbours
 * therefore follow the clusters, and a key that reads dimensions 0-3 keeps them while one that reads 12-15
 * keeps only chance overlap.
 */
function clustered(): Float32Array {
  const rand = mulberry32(7);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const centres = Array.from({ length: 6 }, () => Array.from({ length: 4 }, () => 6 * rand() - 3));
  const x = new Float32Array(N * D);
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < D; k++) x[i * D + k] = k < 4 ? centres[i % 6][k] + 0.3 * gauss() : 0.1 * gauss();
  }
  return x;
}

/**
 * A hand-built VAE whose μ copies input dimensions `from`…`from + 3` (hidden layer [relu(x), relu(−x)]) and
 * whose decoder writes μ back into those dimensions, plus `outputBias` everywhere.
 */
function copyingVae(from: number, outputBias = 0, epochsTrained = 1): VaeModel {
  const encoderW = new Float32Array(D * H);
  for (let k = 0; k < D; k++) {
    encoderW[k * H + k] = 1;
    encoderW[k * H + D + k] = -1;
  }
  const muW = new Float32Array(H * L);
  for (let j = 0; j < L; j++) {
    muW[(from + j) * L + j] = 1;
    muW[(D + from + j) * L + j] = -1;
  }
  const decoderW = new Float32Array(L * H);
  const outputW = new Float32Array(H * D);
  for (let j = 0; j < L; j++) {
    decoderW[j * H + j] = 1;
    decoderW[j * H + L + j] = -1;
    outputW[j * D + from + j] = 1;
    outputW[(L + j) * D + from + j] = -1;
  }
  const hyper = { ...DEFAULT_VAE_HYPER, latent: L, hidden: H, inputTransform: 'none' as const };
  return new VaeModel(
    {
      id: `copy-${from}`,
      created: '2026-01-01T00:00:00.000Z',
      trainingSize: N,
      hyper,
      loss: { final: 0, recon: 0, kl: 0 },
      activeUnits: L,
      inputDim: D,
      latentDim: L,
      hiddenDim: H,
      seed: 1,
      epochsTrained,
      format: VAE_FORMAT,
    },
    {
      inputMean: new Float32Array(D),
      inputStd: new Float32Array(D).fill(1),
      encoderW,
      encoderB: new Float32Array(H),
      muW,
      muB: new Float32Array(L),
      logVarW: new Float32Array(H * L),
      logVarB: new Float32Array(L),
      decoderW,
      decoderB: new Float32Array(H),
      outputW,
      outputB: new Float32Array(D).fill(outputBias),
    },
  );
}

// Key choice at retrain (src/index/key-choice.ts): candidates in order of preference, the first safe one wins.

/** Edited copies: every row again with a little noise, each the copy of its own row. */
function editedOf(x: Float32Array, noise: number): EditedCopies {
  const rand = mulberry32(11);
  return { features: x.map((v) => v + noise * (rand() - 0.5)), count: N, targets: Int32Array.from({ length: N }, (_, i) => i) };
}

test('key choice: the first candidate that passes wins; a broken one ahead of it is refused with its reason', () => {
  const features = clustered();
  const broken = copyingVae(12);
  const good = fitPcaKey(features, N, D, { components: L, shrinkage: 1, seed: 1 });
  assert.equal(keyKindOf(good), 'pca-whitened');
  const choice = chooseKey(features, N, null, [broken, good], editedOf(features, 0.05));
  assert.equal(choice.chosen, good, choice.reason);
  assert.match(choice.reason, /whitened PCA-4/);
  assert.ok(choice.candidates[0].failure, 'the broken candidate must be refused');
  assert.equal(choice.candidates[1].failure, null);
  assert.equal(choice.raw.overlap, 1);
});

test('key choice: the reject path keeps the current key when every candidate is broken', () => {
  const features = clustered();
  const choice = chooseKey(features, N, null, [copyingVae(12), copyingVae(8)], editedOf(features, 0.05));
  assert.equal(choice.chosen, null);
  assert.match(choice.reason, /No candidate passed/);
  assert.ok(choice.candidates.every((c) => c.failure !== null));
});

test('key rule: a key that keeps the neighbours but loses edited copies is refused', () => {
  const raw = { overlap: 1, editRecall: 0.9 };
  assert.equal(keyRuleFailure({ overlap: 0.8, editRecall: 0.86 }, raw, null), null);
  assert.match(keyRuleFailure({ overlap: 0.8, editRecall: 0.5 }, raw, null) ?? '', /edited copies/);
  assert.match(keyRuleFailure({ overlap: 0.4, editRecall: 0.9 }, raw, null) ?? '', /raw-feature neighbours/);
  // Against a learned current key, the candidate may not fall more than the margin below it.
  assert.match(keyRuleFailure({ overlap: 0.7, editRecall: 0.88 }, raw, { overlap: 0.8, editRecall: 0.88 }) ?? '', /overlap would drop/);
});

test('a PCA key in the VAE format encodes exactly the projection', () => {
  const features = clustered();
  const key = fitPcaKey(features, N, D, { components: L, shrinkage: null, seed: 1 });
  const pca = fitPca(features, N, D, L, 1);
  const expected = projectPca(pca, features, N, false);
  const actual = key.encode(features, N);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i] - expected[i]) < 1e-4, `row ${Math.floor(i / L)}: ${actual[i]} vs ${expected[i]}`);
});

test('key choice: refuses to decide on too few held-out rows', () => {
  const features = clustered();
  assert.throws(() => chooseKey(features.subarray(0, 40 * D), 40, null, [copyingVae(0)]), RangeError);
});

/**
 * Judged pairs that raw features order right and a key reading only dimensions 0-3 orders wrong: the query and
 * the liked result share dimension 5, the query and the disliked result share dimension 0.
 */
function judgedAgainstCopy(pairs: number): JudgedPairs {
  const features = new Float32Array(3 * D);
  features[0] = 1;
  features[5] = 10;
  features[D + 5] = 10;
  features[D + 1] = 0.01;
  features[2 * D] = 1;
  return { features, rows: 3, pairs: Int32Array.from({ length: 3 * pairs }, (_, i) => i % 3) };
}

test('key choice: relevance feedback refuses a candidate that ranks disliked results above liked ones more often than the current key', () => {
  const features = clustered();
  const candidate = copyingVae(0);
  const edited = editedOf(features, 0.05);
  assert.equal(chooseKey(features, N, null, [candidate], edited).chosen, candidate, 'without feedback the candidate passes');
  const refused = chooseKey(features, N, null, [candidate], edited, KEY_RULE, 20, judgedAgainstCopy(20));
  assert.equal(refused.chosen, null, refused.reason);
  assert.match(refused.reason, /disliked result above the liked one in 1\.000 of 20 judged pairs, against 0\.000/);
  assert.equal(refused.raw.misorder, 0);
  // Too little evidence is not evidence: 19 pairs leave the decision to the label-free signals.
  assert.equal(chooseKey(features, N, null, [candidate], edited, KEY_RULE, 20, judgedAgainstCopy(19)).chosen, candidate);
  // Feedback the candidate orders as well as the current key does not stand in its way.
  const agreeing = judgedAgainstCopy(20);
  agreeing.pairs = Int32Array.from({ length: 60 }, (_, i) => [0, 2, 1][i % 3]);
  assert.equal(chooseKey(features, N, null, [candidate], edited, KEY_RULE, 20, agreeing).chosen, candidate);
});

test('key choice in a worker (what a retrain runs) gives what chooseKey gives: same verdicts, same chosen model', async () => {
  const features = clustered();
  const edited = editedOf(features, 0.05);
  const good = fitPcaKey(features, N, D, { components: L, shrinkage: 1, seed: 1 });
  const cases: Array<[VaeModel | null, VaeModel[], JudgedPairs | undefined]> = [
    [null, [copyingVae(12), good], undefined],
    [null, [copyingVae(12), copyingVae(8)], undefined],
    [copyingVae(0), [copyingVae(1), good], judgedAgainstCopy(20)],
  ];
  for (const [current, candidates, judged] of cases) {
    const here = chooseKey(features, N, current, candidates, edited, KEY_RULE, 20, judged);
    const there = await chooseKeyInWorker(features, N, current, candidates, edited, KEY_RULE, judged);
    assert.equal(there.chosen, here.chosen, here.reason);
    assert.deepEqual({ ...there, chosen: null }, { ...here, chosen: null });
  }
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(chooseKeyInWorker(features, N, null, [good], edited, KEY_RULE, undefined, controller.signal), (error) => isAppError(error, 'TRAINING_CANCELLED'));
});
