import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isAppError } from '../src/errors.js';
import { loadVae, saveVae } from '../src/ml/vae-files.js';
import { DEFAULT_VAE_HYPER, resolveVaeHyper, trainingPlan, type VaeHyperParams } from '../src/ml/vae-hyper.js';
import type { VaeModel } from '../src/ml/vae-model.js';
import { initTrainingBackend } from '../src/ml/tf-backend.js';
import { neighbourLoss, neighbourTarget } from '../src/ml/vae-network.js';
import { trainVae, type VaeProgress } from '../src/ml/vae-train.js';
import { trainVaeInWorker } from '../src/ml/vae-worker-client.js';
import { mulberry32 } from '../src/util/random.js';
import { tempDir } from './helpers/temp-dir.js';

const DIM = 1280;
const CLUSTERS = 10;
const N = 600;
/** Small enough to train in a few seconds, large enough to learn the clusters. */
const SMALL: Partial<VaeHyperParams> = { hidden: 64, latent: 16, epochs: 20, batchSize: 32, learningRate: 3e-3, seed: 11 };

/**
 * MobileNetV2-like vectors: non-negative, L2 norm ~30, each cluster raising 64 random dimensions above a
 * shared background, with per-dimension noise and a per-image scale. The noise is strong enough that an
 * untrained encoder's μ are near chance at finding same-cluster neighbours, so the P@10 bar below means
 * the VAE learned the structure.
 */
function clusteredVectors(n: number, seed: number): { features: Float32Array; labels: Int32Array } {
  const rand = mulberry32(seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const base = Float32Array.from({ length: DIM }, () => rand() * 0.4);
  const centres = Array.from({ length: CLUSTERS }, () => {
    const c = Float32Array.from(base);
    for (let i = 0; i < 64; i++) c[Math.floor(rand() * DIM)] += 0.5 + rand();
    return c;
  });
  const features = new Float32Array(n * DIM);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % CLUSTERS;
    const scale = 0.7 + 0.6 * rand();
    for (let k = 0; k < DIM; k++) features[i * DIM + k] = Math.max(0, (centres[labels[i]][k] + gauss()) * scale);
  }
  return { features, labels };
}

/** Mean share of each vector's 10 nearest neighbours (cosine, itself excluded) that share its label. */
function precisionAt10(vectors: Float32Array, dim: number, labels: Int32Array): number {
  const n = labels.length;
  const unit = new Float64Array(vectors.length);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += vectors[i * dim + j] ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let j = 0; j < dim; j++) unit[i * dim + j] = vectors[i * dim + j] / norm;
  }
  let hits = 0;
  const sims = new Float64Array(n);
  for (let q = 0; q < n; q++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += unit[q * dim + j] * unit[i * dim + j];
      sims[i] = i === q ? -Infinity : s;
    }
    const top = Array.from(sims.keys())
      .sort((a, b) => sims[b] - sims[a])
      .slice(0, 10);
    hits += top.filter((i) => labels[i] === labels[q]).length;
  }
  return hits / (n * 10);
}

const data = clusteredVectors(N, 2024);

let trained: Promise<{ model: VaeModel; progress: VaeProgress[] }> | undefined;
function trainOnce(): Promise<{ model: VaeModel; progress: VaeProgress[] }> {
  trained ??= (async () => {
    const progress: VaeProgress[] = [];
    const model = await trainVaeInWorker(data.features.slice(), N, SMALL, { onProgress: (p) => progress.push(p) });
    return { model, progress };
  })();
  return trained;
}

test('training in a worker lowers the loss and keeps latent units active', async () => {
  const { model, progress } = await trainOnce();
  assert.deepEqual(
    progress.map((p) => p.epoch),
    Array.from({ length: SMALL.epochs! }, (_, i) => i + 1),
  );
  const first = progress[0];
  const last = progress.at(-1)!;
  assert.ok(last.loss < first.loss, `loss ${first.loss} → ${last.loss}`);
  assert.ok(last.recon < first.recon, `recon ${first.recon} → ${last.recon}`);
  assert.ok(last.heldOut !== undefined && Number.isFinite(last.heldOut));
  assert.ok(model.meta.activeUnits > 0 && model.meta.activeUnits <= SMALL.latent!, `active units ${model.meta.activeUnits}`);
  assert.equal(model.meta.inputDim, DIM);
  assert.equal(model.meta.latentDim, SMALL.latent);
  assert.equal(model.meta.hiddenDim, SMALL.hidden);
  assert.equal(model.meta.trainingSize, N);
  assert.equal(model.meta.epochsTrained, SMALL.epochs);
  assert.equal(model.meta.format, 1);
  assert.equal(model.meta.loss.final, last.loss);
});

test('nearest neighbours by cosine of μ share the query cluster, unlike an untrained encoder', async () => {
  const { model } = await trainOnce();
  const untrained = await trainVaeInWorker(data.features.slice(), N, { ...SMALL, epochs: 1, learningRate: 1e-7 });
  const p10 = precisionAt10(model.encode(data.features, N), model.meta.latentDim, data.labels);
  const baseline = precisionAt10(untrained.encode(data.features, N), untrained.meta.latentDim, data.labels);
  // Chance is 0.1. The untrained figure shows that this data does not let a random projection pass.
  assert.ok(baseline < 0.35, `untrained P@10 ${baseline.toFixed(3)}`);
  assert.ok(p10 >= 0.75, `trained P@10 ${p10.toFixed(3)} (untrained ${baseline.toFixed(3)})`);
});

test('the same seed gives identical weights and μ; another seed does not', async () => {
  const { model } = await trainOnce();
  const again = await trainVaeInWorker(data.features.slice(), N, SMALL);
  assert.deepEqual(again.weights, model.weights);
  assert.deepEqual(again.encode(data.features, N), model.encode(data.features, N));
  const other = await trainVaeInWorker(data.features.slice(), N, { ...SMALL, seed: SMALL.seed! + 1, epochs: 2 });
  assert.notDeepEqual(other.encode(data.features, 8), model.encode(data.features, 8));
});

test('encode matches a plain reference forward pass, for full and partial row blocks', async () => {
  const { model } = await trainOnce();
  const { inputDim: d, hiddenDim: h, latentDim: l } = model.meta;
  const w = model.weights;
  const count = 7;
  const got = model.encode(data.features, count);
  for (let r = 0; r < count; r++) {
    const row = data.features.subarray(r * d, (r + 1) * d);
    const norm = Math.hypot(...row);
    const x = Array.from(row, (v, k) => (v / norm - w.inputMean[k]) / w.inputStd[k]);
    const hidden = Array.from({ length: h }, (_, j) => Math.max(0, x.reduce((s, v, k) => s + v * w.encoderW[k * h + j], w.encoderB[j])));
    for (let j = 0; j < l; j++) {
      const mu = hidden.reduce((s, v, k) => s + v * w.muW[k * l + j], w.muB[j]);
      assert.ok(Math.abs(got[r * l + j] - mu) <= 1e-4 * Math.max(1, Math.abs(mu)), `row ${r} dim ${j}: ${got[r * l + j]} vs ${mu}`);
    }
  }
  assert.deepEqual(model.encode(data.features.subarray(3 * d, 4 * d), 1), got.subarray(3 * l, 4 * l));
});

test('trainVae frees every tensor it creates', async () => {
  const tf = await import('@tensorflow/tfjs');
  const small = data.features.subarray(0, 64 * DIM);
  await trainVae(small, 64, { ...SMALL, epochs: 1 }); // loads the backend, whose own tensors are not ours
  const before = tf.memory().numTensors;
  await trainVae(small, 64, { ...SMALL, epochs: 3 });
  await trainVae(small, 64, { ...SMALL, epochs: 2, neighbourWeight: 10 });
  assert.equal(tf.memory().numTensors, before);
});

test('the neighbour term is 0 when μ keeps the input similarities, positive otherwise, and its gradient lowers it', async () => {
  await initTrainingBackend();
  const tf = await import('@tensorflow/tfjs');
  const rand = mulberry32(7);
  const inputs = tf.tensor2d(Float32Array.from({ length: 12 * 40 }, () => rand() - 0.5), [12, 40]);
  const temperature = 0.2;
  const target = neighbourTarget(inputs, temperature);
  // Scaling rows and rotating all of them alike leaves every cosine, hence the term, unchanged.
  const rotation = tf.linalg.qr(tf.tensor2d(Float32Array.from({ length: 40 * 40 }, () => rand() - 0.5), [40, 40]))[0];
  const sameCosines = tf.mul(tf.matMul(inputs, rotation), tf.tensor2d(Float32Array.from({ length: 12 }, () => 0.5 + rand()), [12, 1])) as typeof inputs;
  const matched = neighbourLoss(target, sameCosines, temperature).dataSync()[0];
  assert.ok(Math.abs(matched) < 1e-4, `matched similarities: ${matched}`);

  const mu = tf.variable(tf.tensor2d(Float32Array.from({ length: 12 * 4 }, () => rand() - 0.5), [12, 4]));
  const loss = (): number => neighbourLoss(target, mu, temperature).dataSync()[0];
  const start = loss();
  assert.ok(start > 0.1, `unrelated μ: ${start}`);
  const optimizer = tf.train.sgd(0.05);
  for (let i = 0; i < 50; i++) optimizer.minimize(() => neighbourLoss(target, mu, temperature));
  assert.ok(loss() < 0.5 * start, `after 50 gradient steps: ${start} → ${loss()}`);
  tf.dispose([inputs, target, rotation, sameCosines, mu]);
  optimizer.dispose();
});

test('training with the neighbour term is deterministic given the seed, and changes the model', async () => {
  const withTerm = { ...SMALL, epochs: 2, neighbourWeight: 10 };
  const a = await trainVaeInWorker(data.features.slice(), N, withTerm);
  const b = await trainVaeInWorker(data.features.slice(), N, withTerm);
  assert.deepEqual(a.weights, b.weights);
  const without = await trainVaeInWorker(data.features.slice(), N, { ...withTerm, neighbourWeight: 0 });
  assert.notDeepEqual(without.encode(data.features, 8), a.encode(data.features, 8));
});

test('the time budget ends training after the epoch that exhausts it', async () => {
  const progress: VaeProgress[] = [];
  const model = await trainVae(data.features.subarray(0, 64 * DIM), 64, { ...SMALL, timeBudgetSeconds: 1e-3 }, { onProgress: (p) => progress.push(p) });
  assert.equal(model.meta.epochsTrained, 1);
  assert.deepEqual(
    progress.map((p) => [p.epoch, p.epochs]),
    [[1, 1]],
  );
});

test('maxSteps plans fewer epochs before training starts; a collection the size of openclipart keeps all of them', async () => {
  // 600 rows, 30 held out, batches of 32: 18 steps per epoch, so 40 steps need 3 epochs.
  const capped = { ...SMALL, maxSteps: 40 };
  assert.deepEqual(trainingPlan(N, resolveVaeHyper(capped)), { heldOut: 30, stepsPerEpoch: 18, epochs: 3 });
  const progress: VaeProgress[] = [];
  const model = await trainVae(data.features, N, capped, { onProgress: (p) => progress.push(p) });
  assert.equal(model.meta.epochsTrained, 3);
  assert.deepEqual(
    progress.map((p) => [p.epoch, p.epochs]),
    [[1, 3], [2, 3], [3, 3]],
  );
  // 1,495 images at the default batch are 6 steps per epoch: the default 50 epochs fit under the cap.
  assert.equal(trainingPlan(1495, DEFAULT_VAE_HYPER).epochs, DEFAULT_VAE_HYPER.epochs);
  assert.ok(trainingPlan(10_000, DEFAULT_VAE_HYPER).epochs < DEFAULT_VAE_HYPER.epochs);
});

test('minSteps plans more epochs for a small collection, unless an epoch count is given', () => {
  // 728 images, 36 held out, batches of 256: 3 steps per epoch, so the default 300 steps are 100 epochs.
  assert.deepEqual(trainingPlan(728, DEFAULT_VAE_HYPER), { heldOut: 36, stepsPerEpoch: 3, epochs: 100 });
  assert.equal(trainingPlan(728, resolveVaeHyper({})).epochs, 100);
  // A large collection is bounded by maxSteps as before: 9,500 training rows, 37 steps per epoch, 14 epochs.
  assert.equal(trainingPlan(10_000, DEFAULT_VAE_HYPER).epochs, 14);
  assert.equal(trainingPlan(728, resolveVaeHyper({ epochs: 2 })).epochs, 2);
  assert.equal(trainingPlan(728, resolveVaeHyper({ epochs: 2, minSteps: 30 })).epochs, 10);
  assert.equal(trainingPlan(728, resolveVaeHyper({ minSteps: 30_000 })).epochs, Math.ceil(DEFAULT_VAE_HYPER.maxSteps / 3));
});

test('reconScale and klWarmupFraction change training; reconScale ½ and a fifth of the steps are the old objective', async () => {
  const rows = data.features.subarray(0, 128 * DIM);
  const base = { ...SMALL, epochs: 2 };
  const a = await trainVae(rows, 128, base);
  assert.deepEqual((await trainVae(rows, 128, { ...base, reconScale: 0.5, klWarmupFraction: 0.2 })).weights, a.weights);
  assert.notDeepEqual((await trainVae(rows, 128, { ...base, reconScale: 1 })).weights, a.weights);
  assert.notDeepEqual((await trainVae(rows, 128, { ...base, klWarmupFraction: 0.5 })).weights, a.weights);
});

test('save then load gives identical encodings; a corrupted or newer model is refused', async () => {
  const { model } = await trainOnce();
  const dir = join(await tempDir(), 'vae', model.meta.id);
  await saveVae(model, dir);
  const loaded = await loadVae(dir);
  assert.deepEqual(loaded.encode(data.features, N), model.encode(data.features, N));
  assert.match(loaded.meta.weightsSha256 ?? '', /^[0-9a-f]{64}$/);

  await saveVae(model, dir); // replacing an existing model works too
  assert.deepEqual((await loadVae(dir)).weights, model.weights);

  const weightsFile = join(dir, 'weights.bin');
  const bytes = await readFile(weightsFile);
  bytes[1234] ^= 0x40;
  await writeFile(weightsFile, bytes);
  await assert.rejects(loadVae(dir), (error) => isAppError(error, 'MODEL_INVALID') && /checksum/.test(error.message));

  await saveVae(model, dir);
  const metaFile = join(dir, 'meta.json');
  const meta = JSON.parse(await readFile(metaFile, 'utf8'));
  await writeFile(metaFile, JSON.stringify({ ...meta, format: 2 }));
  await assert.rejects(loadVae(dir), (error) => isAppError(error, 'MODEL_INVALID') && /newer version/.test(error.message));

  await assert.rejects(loadVae(join(dir, 'nothing-here')), (error) => isAppError(error, 'MODEL_MISSING'));
});

test('a model saved before minSteps, reconScale and klWarmupFraction existed loads with the settings it trained with', async () => {
  const { model } = await trainOnce();
  const dir = join(await tempDir(), 'vae', 'legacy');
  await saveVae(model, dir);
  const metaFile = join(dir, 'meta.json');
  const meta = JSON.parse(await readFile(metaFile, 'utf8'));
  const { minSteps, reconScale, klWarmupFraction, ...oldHyper } = meta.hyper;
  assert.deepEqual([typeof minSteps, typeof reconScale, typeof klWarmupFraction], ['number', 'number', 'number']);
  await writeFile(metaFile, JSON.stringify({ ...meta, hyper: { ...oldHyper, epochs: 50, klWarmupEpochs: 10 } }));
  const loaded = await loadVae(dir);
  assert.equal(loaded.meta.hyper.minSteps, 0);
  assert.equal(loaded.meta.hyper.reconScale, 0.5);
  assert.equal(loaded.meta.hyper.klWarmupFraction, 0.2);
  assert.equal('klWarmupEpochs' in loaded.meta.hyper, false);
  // What the quality gate reads to count the steps an old model trained: the old plan, without minSteps.
  assert.deepEqual(trainingPlan(10_000, loaded.meta.hyper), trainingPlan(10_000, { ...DEFAULT_VAE_HYPER, ...oldHyper, epochs: 50, minSteps: 0 }));
  assert.deepEqual(loaded.encode(data.features, 4), model.encode(data.features, 4));
});

test('aborting rejects with TRAINING_CANCELLED within a batch or two', async () => {
  const controller = new AbortController();
  let abortedAt = 0;
  const running = trainVaeInWorker(data.features.slice(), N, { ...SMALL, epochs: 500 }, {
    signal: controller.signal,
    onProgress: (p) => {
      if (p.epoch === 1) {
        abortedAt = performance.now();
        controller.abort();
      }
    },
  });
  await assert.rejects(running, (error) => isAppError(error, 'TRAINING_CANCELLED'));
  const latency = performance.now() - abortedAt;
  assert.ok(latency < 1_000, `cancellation took ${latency.toFixed(0)} ms`);

  await assert.rejects(trainVaeInWorker(data.features.slice(), N, SMALL, { signal: AbortSignal.abort() }), (error) =>
    isAppError(error, 'TRAINING_CANCELLED'),
  );
});

test('too little data is refused with NOT_ENOUGH_DATA, bad settings with CONFIG_INVALID', async () => {
  await assert.rejects(trainVaeInWorker(data.features.slice(0, 10 * DIM), 10, SMALL), (error) => isAppError(error, 'NOT_ENOUGH_DATA'));
  await assert.rejects(trainVaeInWorker(data.features.slice(), N, { ...SMALL, latent: 0 }), (error) => isAppError(error, 'CONFIG_INVALID'));
  await assert.rejects(trainVaeInWorker(data.features.slice(), N, { ...SMALL, maxSteps: 0 }), (error) => isAppError(error, 'CONFIG_INVALID') && /maxSteps/.test(error.message));
  await assert.rejects(trainVaeInWorker(data.features.slice(), N, { ...SMALL, klWarmupFraction: 1.5 }), (error) => isAppError(error, 'CONFIG_INVALID') && /klWarmupFraction/.test(error.message));
  await assert.rejects(trainVaeInWorker(data.features.slice(), N, { ...SMALL, reconScale: 0 }), (error) => isAppError(error, 'CONFIG_INVALID') && /reconScale/.test(error.message));
  const misspelt = { ...SMALL, latentDim: 8 } as Partial<VaeHyperParams>;
  await assert.rejects(trainVaeInWorker(data.features.slice(), N, misspelt), (error) => isAppError(error, 'CONFIG_INVALID') && /latentDim/.test(error.message));
});
