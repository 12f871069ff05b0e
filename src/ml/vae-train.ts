/**
 * Trains the VAE with tfjs. Meant to run inside a worker thread (see vae-worker-client.ts): an epoch over
 * 20k vectors keeps a core busy for seconds.
 */
import { randomBytes } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { AppError } from '../errors.js';
import { Sfc32 } from '../util/random.js';
import { initTrainingBackend } from './tf-backend.js';
import { resolveVaeHyper, trainingPlan, type InputTransform, type VaeHyperParams } from './vae-hyper.js';
import { VAE_FORMAT, VaeModel, transformRow, type VaeMeta, type VaeWeights } from './vae-model.js';
import { decoder, encoder, initParams, klPerDim, neighbourLoss, neighbourTarget, reconPerVector, type Params } from './vae-network.js';

/** Losses are per-vector means over the epoch, in nats. */
export type VaeProgress = {
  epoch: number;
  /** Planned epochs: trainingPlan's, lowered once the time budget shows they will not all fit. */
  epochs: number;
  /**
   * The optimised objective: (reconScale / ½)·recon + β·KL (β still warming up, free bits applied) + the weighted
   * neighbour term.
   */
  loss: number;
  recon: number;
  /** The true KL(q(z|x) ‖ N(0, I)), without free bits or β. */
  kl: number;
  /** recon + KL on the held-out slice, decoding μ rather than a sample so that it is not noisy. */
  heldOut?: number;
  activeUnits?: number;
  secondsPerEpoch: number;
};

export type VaeTrainHooks = {
  onProgress?(p: VaeProgress): void;
  /** Polled before every batch; returning true ends training with TRAINING_CANCELLED. */
  shouldStop?(): boolean;
};

export const MIN_VAE_TRAINING_SIZE = 32;

/** Burda et al.'s threshold: a latent dimension is in use when its μ varies across the data. */
const ACTIVE_UNIT_VARIANCE = 0.01;
/** Vectors used to count active units after each epoch (the final count uses all of them). */
const ACTIVE_UNIT_SAMPLE = 2048;
const EVAL_CHUNK = 1024;

type Data = { values: Float32Array; n: number; d: number };

/** transformRow, then per-dimension standardization with statistics from the training rows only. */
function preprocess(features: Float32Array, n: number, d: number, trainRows: Uint32Array, transform: InputTransform) {
  const values = new Float32Array(n * d);
  for (let i = 0; i < n; i++) transformRow(transform, features, i * d, d, values, i * d);
  const sum = new Float64Array(d);
  const sumSq = new Float64Array(d);
  for (const row of trainRows) {
    const o = row * d;
    for (let k = 0; k < d; k++) {
      const v = values[o + k];
      sum[k] += v;
      sumSq[k] += v * v;
    }
  }
  const mean = new Float32Array(d);
  const std = new Float32Array(d);
  for (let k = 0; k < d; k++) {
    mean[k] = sum[k] / trainRows.length;
    std[k] = Math.sqrt(Math.max(0, sumSq[k] / trainRows.length - mean[k] * mean[k]));
  }
  // A dimension that is almost always zero would turn its rare activations into huge outliers that
  // dominate the squared error, so no dimension is scaled up more than 10× the typical one.
  const median = Float32Array.from(std).sort()[Math.floor(d / 2)];
  const floor = median > 0 ? 0.1 * median : 1;
  for (let k = 0; k < d; k++) std[k] = Math.max(std[k], floor);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let k = 0; k < d; k++) values[o + k] = (values[o + k] - mean[k]) / std[k];
  }
  return { data: { values, n, d } satisfies Data, mean, std };
}

function gatherRows(data: Data, rows: Uint32Array, from: number, to: number): tf.Tensor2D {
  const batch = new Float32Array((to - from) * data.d);
  for (let i = from; i < to; i++) {
    const o = rows[i] * data.d;
    batch.set(data.values.subarray(o, o + data.d), (i - from) * data.d);
  }
  return tf.tensor2d(batch, [to - from, data.d]);
}

/** Per-dimension variance of μ over `rows`, plus the held-out loss (z = μ, full KL) when asked. */
function evaluate(p: Params, data: Data, rows: Uint32Array, withLoss: boolean): { activeUnits: number; loss?: number } {
  const l = p.muB.shape[0];
  const sum = new Float64Array(l);
  const sumSq = new Float64Array(l);
  let loss = 0;
  for (let from = 0; from < rows.length; from += EVAL_CHUNK) {
    const to = Math.min(rows.length, from + EVAL_CHUNK);
    let muValues: Float32Array = new Float32Array(0);
    // Results leave tidy through the closure: tidy walks whatever it returns, element by element.
    tf.tidy(() => {
      const x = gatherRows(data, rows, from, to);
      const { mu, logVar } = encoder(p, x);
      if (withLoss) loss += tf.add(reconPerVector(x, decoder(p, mu)), tf.sum(klPerDim(mu, logVar))).dataSync()[0] * (to - from);
      muValues = mu.dataSync() as Float32Array;
    });
    for (let i = 0; i < to - from; i++) {
      for (let j = 0; j < l; j++) {
        const v = muValues[i * l + j];
        sum[j] += v;
        sumSq[j] += v * v;
      }
    }
  }
  let activeUnits = 0;
  for (let j = 0; j < l; j++) {
    const mean = sum[j] / rows.length;
    if (sumSq[j] / rows.length - mean * mean > ACTIVE_UNIT_VARIANCE) activeUnits++;
  }
  return withLoss ? { activeUnits, loss: loss / rows.length } : { activeUnits };
}

function newModelId(now: Date): string {
  return `${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(4).toString('hex')}`;
}

function cancelled(): AppError {
  return new AppError('TRAINING_CANCELLED', 'Training was cancelled.');
}

/**
 * Trains a VAE on `n` row-major feature vectors. Deterministic for a given seed as long as the time
 * budget does not cut the run short. `features` is read, never modified.
 */
export async function trainVae(
  features: Float32Array,
  n: number,
  hyperIn: Partial<VaeHyperParams>,
  hooks: VaeTrainHooks = {},
): Promise<VaeModel> {
  const hyper = resolveVaeHyper(hyperIn);
  if (!Number.isInteger(n) || n < MIN_VAE_TRAINING_SIZE) {
    throw new AppError('NOT_ENOUGH_DATA', `Training needs at least ${MIN_VAE_TRAINING_SIZE} images; there are ${n}.`, {
      details: { n, minimum: MIN_VAE_TRAINING_SIZE },
    });
  }
  if (features.length === 0 || features.length % n !== 0) {
    throw new AppError('TRAINING_FAILED', 'Training failed: the feature matrix does not divide into the given number of images.', {
      details: { length: features.length, n },
    });
  }
  const d = features.length / n;
  const { hidden: h, latent: l, seed } = hyper;
  await initTrainingBackend();
  const started = performance.now();

  const order = Uint32Array.from({ length: n }, (_, i) => i);
  new Sfc32(seed, 1).shuffle(order);
  const plan = trainingPlan(n, hyper);
  const heldOutCount = plan.heldOut;
  const heldOutRows = order.slice(0, heldOutCount);
  const trainRows = order.slice(heldOutCount);
  const sampleRows = trainRows.slice(0, ACTIVE_UNIT_SAMPLE);
  const { data, mean, std } = preprocess(features, n, d, trainRows, hyper.inputTransform);

  const shuffleRng = new Sfc32(seed, 2);
  const noiseRng = new Sfc32(seed, 3);
  const params = initParams(new Sfc32(seed, 4), d, h, l);
  const varList = Object.values(params);
  const optimizer = tf.train.adam(hyper.learningRate);
  const steps = plan.stepsPerEpoch;
  const freeBits = hyper.freeBitsPerDim;
  const reconScaleFactor = hyper.reconScale / 0.5;
  const neighbourWeight = hyper.neighbourWeight;
  // Undoing the standardization (but not the centring) for the neighbour target: cosine on the centred
  // inputs retrieved better on openclipart (P@20 0.451) than on the standardized ones (0.446) or raw (0.431).
  const inputScale = neighbourWeight > 0 ? tf.tensor1d(std) : undefined;

  // Decided before the first step, so the KL warm-up below scales with the run that will actually happen.
  let plannedEpochs = plan.epochs;
  let step = 0;
  let last = { loss: NaN, recon: NaN, kl: NaN, heldOut: undefined as number | undefined };
  let epochsTrained = 0;
  try {
    for (let epoch = 1; epoch <= plannedEpochs; epoch++) {
      const epochStart = performance.now();
      shuffleRng.shuffle(trainRows);
      const warmupSteps = Math.round(hyper.klWarmupFraction * plannedEpochs * steps);
      let lossSum = 0;
      let reconSum = 0;
      let klSum = 0;
      for (let s = 0; s < steps; s++) {
        if (hooks.shouldStop?.()) throw cancelled();
        const from = Math.floor((s * trainRows.length) / steps);
        const to = Math.floor(((s + 1) * trainRows.length) / steps);
        const beta = warmupSteps > 0 ? hyper.beta * Math.min(1, step / warmupSteps) : hyper.beta;
        const eps = new Float32Array((to - from) * l);
        for (let i = 0; i < eps.length; i++) eps[i] = noiseRng.normal();
        let loss = NaN;
        let recon = NaN;
        let kl = NaN;
        tf.tidy(() => {
          const x = gatherRows(data, trainRows, from, to);
          const noise = tf.tensor2d(eps, [to - from, l]);
          const targetLogP = inputScale ? neighbourTarget(tf.mul(x, inputScale) as tf.Tensor2D, hyper.neighbourTemperature) : undefined;
          const cost = optimizer.minimize(
            () => {
              const { mu, logVar } = encoder(params, x);
              const z = tf.add(mu, tf.mul(tf.exp(tf.mul(0.5, logVar)), noise)) as tf.Tensor2D;
              const reconT = reconPerVector(x, decoder(params, z));
              const perDim = klPerDim(mu, logVar);
              // Free bits: each dimension's first `freeBits` nats cost nothing, so the optimiser gains
              // nothing by collapsing a dimension onto the prior.
              const charged = freeBits > 0 ? tf.sum(tf.maximum(perDim, freeBits)) : tf.sum(perDim);
              recon = reconT.dataSync()[0];
              kl = tf.sum(perDim).dataSync()[0];
              // reconT is ½Σ(x − x̂)²; reconScale / ½ turns it into the objective's reconScale·Σ(x − x̂)².
              const elbo = tf.add(tf.mul(reconScaleFactor, reconT), tf.mul(beta, charged)) as tf.Scalar;
              return targetLogP ? (tf.add(elbo, tf.mul(neighbourWeight, neighbourLoss(targetLogP, mu, hyper.neighbourTemperature))) as tf.Scalar) : elbo;
            },
            true,
            varList,
          );
          loss = cost!.dataSync()[0];
        });
        if (!Number.isFinite(loss)) {
          throw new AppError('TRAINING_FAILED', 'Training diverged (the loss became infinite or NaN). Try a lower learning rate.', {
            details: { epoch, step, loss },
          });
        }
        const size = to - from;
        lossSum += loss * size;
        reconSum += recon * size;
        klSum += kl * size;
        step++;
      }
      const heldOut = heldOutCount > 0 ? evaluate(params, data, heldOutRows, true).loss : undefined;
      const { activeUnits } = evaluate(params, data, sampleRows, false);
      const secondsPerEpoch = (performance.now() - epochStart) / 1000;
      const elapsed = (performance.now() - started) / 1000;
      epochsTrained = epoch;
      plannedEpochs = Math.min(plan.epochs, epoch + Math.floor((hyper.timeBudgetSeconds - elapsed) / secondsPerEpoch));
      last = { loss: lossSum / trainRows.length, recon: reconSum / trainRows.length, kl: klSum / trainRows.length, heldOut };
      hooks.onProgress?.({ epoch, epochs: Math.max(plannedEpochs, epoch), ...last, activeUnits, secondsPerEpoch });
    }
    if (hooks.shouldStop?.()) throw cancelled();
    const { activeUnits } = evaluate(params, data, order, false);
    const weights = {
      inputMean: mean,
      inputStd: std,
      ...Object.fromEntries(Object.entries(params).map(([name, v]) => [name, v.dataSync() as Float32Array])),
    } as VaeWeights;
    const now = new Date();
    const meta: VaeMeta = {
      id: newModelId(now),
      created: now.toISOString(),
      trainingSize: n,
      hyper,
      loss: {
        final: last.loss,
        recon: last.recon,
        kl: last.kl,
        ...(last.heldOut !== undefined ? { heldOut: last.heldOut } : {}),
      },
      activeUnits,
      inputDim: d,
      latentDim: l,
      hiddenDim: h,
      seed,
      epochsTrained,
      format: VAE_FORMAT,
    };
    return new VaeModel(meta, weights);
  } finally {
    optimizer.dispose();
    inputScale?.dispose();
    for (const v of varList) v.dispose();
  }
}
