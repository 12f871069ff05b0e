/**
 * A trained VAE as plain data, with pure-JS inference so that answering a query never loads tfjs.
 * Training lives in vae-train.ts; this file must stay free of tfjs imports.
 */
import { randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../errors.js';
import { sha256, syncDir, syncFile } from '../util/atomic-file.js';
import { ROW_BLOCK, dense, transpose } from './linalg.js';

/** Bumped whenever meta.json or weights.bin change incompatibly; loadVae refuses anything newer. */
export const VAE_FORMAT = 1;

export const INPUT_TRANSFORMS = ['l2', 'log1p', 'none'] as const;
export type InputTransform = (typeof INPUT_TRANSFORMS)[number];

/**
 * The per-vector step before standardization, shared by training and inference so both see the same inputs.
 * 'l2' scales each vector to unit length: cosine on raw features, the baseline this model replaces, ignores
 * a vector's length, and on synthetic data with per-image scale variation it raised P@10 from ~0.66 to
 * ~0.88 over 'log1p'. 'log1p' compresses large activations; it showed no gain on that data.
 */
export function transformRow(
  transform: InputTransform,
  src: Float32Array,
  srcOffset: number,
  d: number,
  dst: Float32Array | Float64Array,
  dstOffset: number,
): void {
  if (transform === 'l2') {
    let sumSq = 0;
    for (let k = 0; k < d; k++) sumSq += src[srcOffset + k] * src[srcOffset + k];
    const scale = sumSq > 0 ? 1 / Math.sqrt(sumSq) : 0;
    for (let k = 0; k < d; k++) dst[dstOffset + k] = src[srcOffset + k] * scale;
  } else if (transform === 'log1p') {
    for (let k = 0; k < d; k++) dst[dstOffset + k] = Math.log1p(src[srcOffset + k]);
  } else {
    for (let k = 0; k < d; k++) dst[dstOffset + k] = src[srcOffset + k];
  }
}

/** Each row scaled to unit length (zero rows stay zero), so a dot product is the cosine. */
export function unitRows(vectors: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) transformRow('l2', vectors, i * d, d, out, i * d);
  return out;
}

export type VaeHyperParams = {
  latent: number;
  hidden: number;
  /** Epochs planned unless `minSteps` asks for more or `maxSteps` for fewer; `timeBudgetSeconds` may end training earlier. */
  epochs: number;
  /**
   * Lower bound on optimiser steps (batches): a small training set runs more than `epochs` epochs to reach it, so
   * that the model trains as long on 700 images as on 1,500. 0 plans exactly `epochs` (the meaning before this field).
   */
  minSteps: number;
  /**
   * Upper bound on optimiser steps over the whole run, above `minSteps`: the run plans
   * min(max(epochs, ⌈minSteps / steps per epoch⌉), ⌈maxSteps / steps per epoch⌉) epochs before it starts, so a large
   * training set costs a bounded time.
   */
  maxSteps: number;
  batchSize: number;
  learningRate: number;
  /** Weight of the KL term once warm-up is over. */
  beta: number;
  /**
   * Weight of Σ(x − x̂)² (standardized inputs) in the training objective: ½ is the unit-variance Gaussian
   * log-likelihood, 1 the plain summed squared error (equivalently ½ with the KL term at half weight). Losses
   * are reported as the ½ log-likelihood whatever this is, so held-out losses of models stay comparable.
   */
  reconScale: number;
  /** The KL weight ramps linearly from 0 to `beta` over this share of the planned optimiser steps. */
  klWarmupFraction: number;
  /** Nats per latent dimension that the KL term does not charge for (free bits). */
  freeBitsPerDim: number;
  /** Share of the vectors kept out of training to measure a held-out loss. */
  heldOutFraction: number;
  /**
   * Weight of the neighbour term: per batch, KL from the softmax over input cosine similarities (of the
   * centred, unscaled inputs) to the softmax over μ cosine similarities, in nats per vector. 0 turns it off.
   */
  neighbourWeight: number;
  /** Temperature of both softmaxes of the neighbour term: lower weighs the nearest neighbours more. */
  neighbourTemperature: number;
  /** Applied to each feature vector before per-dimension standardization; see transformRow. */
  inputTransform: InputTransform;
  /** Wall-clock budget for the whole run; the epoch count shrinks to fit it. */
  timeBudgetSeconds: number;
  seed: number;
};

/**
 * Why these values: 64 latent dimensions keep HNSW fast and still hold the cluster structure; 50 epochs
 * because on 10k synthetic clustered vectors P@10 was 0.94 after 20 epochs and 0.999 after 40, and smaller
 * sets take fewer steps per epoch. At most 500 steps, so that a retrain at 100k images fits two minutes
 * (issue 5): the training sample holds at most 10k images (37 steps per epoch at batch 256), where 500 steps
 * are 14 epochs, ~57 s on one idle core (0.11 s per step). On openclipart (1,495 images, 6 steps per epoch)
 * P@20 was 0.441 / 0.438 (seeds 1 / 2) after 300 steps, 0.441 / 0.436 after 150 and 0.427 / 0.420 after 90,
 * so the cap leaves every collection up to ~3,000 images at its full 50 epochs. On the benchmark's 10k
 * features (9,000 training rows) the held-out loss still falls past the cap (146 nats after 330 steps, 131
 * after 528, 123 after 759, 108 after 50 epochs = 1,650 steps) while the gate's retrieval measure does not
 * (overlap@20 with the raw neighbours 0.863, 0.860, 0.856, 0.849), as on openclipart, where settings with a
 * lower held-out loss did not retrieve better (docs/relevance.md, Tuning). The 30-minute budget stays as a
 * safety net for slow machines. The KL weight warms up over the first fifth of the planned run so the encoder
 * learns to use its latents before the prior pulls on them, and 0.25 free nats per dimension keep the KL term
 * from pushing any dimension all the way onto the prior. The neighbour term is off: on openclipart its best
 * weight raised P@20 by 0.001-0.004 over three seeds but coarse P@20 by -0.005 to +0.003, and never reached
 * PCA-64 (docs/relevance.md, Tuning). At least 300 steps: a small collection's 50 epochs are few steps (150 on the
 * 728 card-deck images), and 300 raised card-deck P@20 from 0.097 to 0.101 (two seeds), matching the reference
 * recipe's 0.102, while openclipart already trains 300; the reference recipe's other changes (no l2, summed squared
 * error, no free bits, batch 128, longer warm-up, 600 steps) did not help on either set (docs/relevance.md, "Why the
 * engine's VAE lost to a plain one"). minSteps leaves large collections alone: at 10k training rows the plan is
 * already 518 steps.
 */
export const DEFAULT_VAE_HYPER: Readonly<VaeHyperParams> = Object.freeze({
  latent: 64,
  hidden: 512,
  epochs: 50,
  maxSteps: 500,
  batchSize: 256,
  learningRate: 1e-3,
  beta: 1,
  minSteps: 300,
  reconScale: 0.5,
  klWarmupFraction: 0.2,
  freeBitsPerDim: 0.25,
  heldOutFraction: 0.05,
  neighbourWeight: 0,
  neighbourTemperature: 0.1,
  inputTransform: 'l2',
  timeBudgetSeconds: 1800,
  seed: 1,
});

/** Held-out slices smaller than this give a loss too noisy to read; those vectors train instead. */
const MIN_HELD_OUT = 16;

export type TrainingPlan = {
  /** Vectors kept out of training to measure the held-out loss. */
  heldOut: number;
  stepsPerEpoch: number;
  /** Epochs planned before training starts; the time budget may still end it sooner. */
  epochs: number;
};

/** What a run on `n` vectors will do. Here rather than in vae-train.ts so that callers can plan without tfjs. */
export function trainingPlan(n: number, hyper: VaeHyperParams): TrainingPlan {
  const fraction = Math.floor(n * hyper.heldOutFraction);
  const heldOut = fraction >= MIN_HELD_OUT ? fraction : 0;
  const stepsPerEpoch = Math.max(1, Math.round((n - heldOut) / hyper.batchSize));
  const wanted = Math.max(hyper.epochs, Math.ceil(hyper.minSteps / stepsPerEpoch));
  return { heldOut, stepsPerEpoch, epochs: Math.min(wanted, Math.ceil(hyper.maxSteps / stepsPerEpoch)) };
}

/**
 * Settings saved before a field existed, completed with the value that reproduces how they trained, so that an old
 * model's meta still describes it (trainingPlan on it gives the steps it ran; the gate compares steps).
 */
export function withLegacyDefaults(hyper: Partial<VaeHyperParams> & { klWarmupEpochs?: number }): VaeHyperParams {
  const { klWarmupEpochs, ...rest } = hyper;
  const epochs = rest.epochs ?? 50;
  return {
    minSteps: 0,
    reconScale: 0.5,
    // The old warm-up ran klWarmupEpochs out of `epochs`, shrunk with the planned run: the same share of it.
    klWarmupFraction: klWarmupEpochs !== undefined ? Math.min(1, klWarmupEpochs / epochs) : 0.2,
    ...rest,
  } as VaeHyperParams;
}

export type VaeMeta = {
  id: string;
  created: string;
  trainingSize: number;
  hyper: VaeHyperParams;
  loss: { final: number; recon: number; kl: number; heldOut?: number };
  activeUnits: number;
  inputDim: number;
  latentDim: number;
  hiddenDim: number;
  seed: number;
  /** Fewer than hyper.epochs when maxSteps or the time budget ended training. */
  epochsTrained: number;
  /** Hex sha256 of weights.bin: set by saveVae, checked by loadVae. */
  weightsSha256?: string;
  /** What the encoder is: a trained VAE (absent in files from before linear keys) or a PCA key (linear-key.ts). */
  keyKind?: 'vae' | 'pca' | 'pca-whitened';
  /** A whitened PCA key's shrinkage. */
  shrinkage?: number;
  format: 1;
};

/**
 * Dense matrices are row-major [in][out]: encoding walks one contiguous weight row per input value.
 * The decoder is kept although retrieval only needs μ: it makes the file a complete VAE that can score
 * new data (held-out loss, drift) or warm-start a retrain.
 */
export type VaeWeights = {
  inputMean: Float32Array;
  inputStd: Float32Array;
  encoderW: Float32Array;
  encoderB: Float32Array;
  muW: Float32Array;
  muB: Float32Array;
  logVarW: Float32Array;
  logVarB: Float32Array;
  decoderW: Float32Array;
  decoderB: Float32Array;
  outputW: Float32Array;
  outputB: Float32Array;
};

type Dims = { inputDim: number; hiddenDim: number; latentDim: number };

/** The order and sizes of the arrays in weights.bin. */
function weightLayout({ inputDim: d, hiddenDim: h, latentDim: l }: Dims): Array<[keyof VaeWeights, number]> {
  return [
    ['inputMean', d],
    ['inputStd', d],
    ['encoderW', d * h],
    ['encoderB', h],
    ['muW', h * l],
    ['muB', l],
    ['logVarW', h * l],
    ['logVarB', l],
    ['decoderW', l * h],
    ['decoderB', h],
    ['outputW', h * d],
    ['outputB', d],
  ];
}

export class VaeModel {
  readonly meta: VaeMeta;
  readonly weights: VaeWeights;
  private readonly invStd: Float32Array;
  // Encoder matrices as [out][in], so each output is a dot product over a contiguous row: measured ~2×
  // faster in V8 than accumulating into the outputs (no store per multiply-add).
  private readonly encoderT: Float32Array;
  private readonly muT: Float32Array;

  constructor(meta: VaeMeta, weights: VaeWeights) {
    for (const [name, size] of weightLayout(meta)) {
      const array = weights[name];
      if (!(array instanceof Float32Array) || array.length !== size) {
        throw new AppError('MODEL_INVALID', 'The relevance model is damaged: its weights do not match its description. Retrain it.', {
          details: { tensor: name, expected: size, actual: array?.length },
        });
      }
    }
    this.meta = meta;
    this.weights = weights;
    this.invStd = weights.inputStd.map((s) => 1 / s);
    this.encoderT = transpose(weights.encoderW, meta.inputDim, meta.hiddenDim);
    this.muT = transpose(weights.muW, meta.hiddenDim, meta.latentDim);
  }

  /** μ of q(z|x) for `count` row-major feature vectors: count × latentDim values. */
  encode(features: Float32Array, count: number): Float32Array {
    const { inputDim: d, hiddenDim: h, latentDim: l } = this.meta;
    if (!Number.isInteger(count) || count < 0 || features.length < count * d) {
      throw new AppError('INFERENCE_FAILED', 'Could not compare this image: its features have the wrong size.', {
        details: { count, inputDim: d, length: features.length },
      });
    }
    const out = new Float32Array(count * l);
    // Float64 scratch: measured faster than Float32 in V8 (no float32 rounding on every store).
    const x = new Float64Array(ROW_BLOCK * d);
    const hidden = new Float64Array(ROW_BLOCK * h);
    const mu = new Float64Array(ROW_BLOCK * l);
    for (let r0 = 0; r0 < count; r0 += ROW_BLOCK) {
      const rows = Math.min(ROW_BLOCK, count - r0);
      this.standardize(features, r0, rows, x);
      dense(x, rows, this.encoderT, this.weights.encoderB, d, h, hidden);
      for (let i = 0; i < rows * h; i++) if (hidden[i] < 0) hidden[i] = 0;
      dense(hidden, rows, this.muT, this.weights.muB, h, l, mu);
      for (let i = 0; i < rows * l; i++) out[r0 * l + i] = mu[i];
    }
    return out;
  }

  /**
   * The encoder's input for `rows` feature rows from row `r0`: the input transform, then standardization, written
   * to `x` from its start. Public so that the bulk encoder (vae-encoder.worker.ts) feeds its matMul the same values.
   */
  standardize(features: Float32Array, r0: number, rows: number, x: Float32Array | Float64Array): void {
    const { inputMean } = this.weights;
    const { invStd } = this;
    const d = this.meta.inputDim;
    for (let r = 0; r < rows; r++) {
      const o = r * d;
      transformRow(this.meta.hyper.inputTransform, features, (r0 + r) * d, d, x, o);
      for (let k = 0; k < d; k++) x[o + k] = (x[o + k] - inputMean[k]) * invStd[k];
    }
  }
}

const META_FILE = 'meta.json';
const WEIGHTS_FILE = 'weights.bin';

function invalid(dir: string, reason: string, cause?: unknown): AppError {
  return new AppError('MODEL_INVALID', `The relevance model in ${dir} cannot be used (${reason}). Retrain it.`, {
    cause,
    details: { dir, reason },
  });
}

function packWeights(model: VaeModel): Buffer {
  const layout = weightLayout(model.meta);
  const total = layout.reduce((sum, [, size]) => sum + size, 0);
  const packed = new Float32Array(total);
  let offset = 0;
  for (const [name, size] of layout) {
    packed.set(model.weights[name], offset);
    offset += size;
  }
  return Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes `dir/meta.json` and `dir/weights.bin` so that a reader sees either the old model or the new one,
 * never a mix: both files go to a sibling temp directory, are fsynced, and the directory is renamed into
 * place. An existing `dir` is moved aside to `dir.previous` first (rename cannot replace a non-empty
 * directory); a crash between those two renames leaves the old model there.
 */
export async function saveVae(model: VaeModel, dir: string): Promise<void> {
  const target = path.resolve(dir);
  const parent = path.dirname(target);
  await mkdir(parent, { recursive: true });
  const weights = packWeights(model);
  const meta: VaeMeta = { ...model.meta, weightsSha256: sha256(weights) };
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const previous = `${target}.previous`;
  try {
    await mkdir(tmp);
    await writeFile(path.join(tmp, WEIGHTS_FILE), weights);
    await writeFile(path.join(tmp, META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
    await syncFile(path.join(tmp, WEIGHTS_FILE));
    await syncFile(path.join(tmp, META_FILE));
    await syncDir(tmp);
    if (await exists(target)) {
      await rm(previous, { recursive: true, force: true });
      await rename(target, previous);
    }
    await rename(tmp, target);
    await syncDir(parent);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw new AppError('STORE_FAILED', `Could not save the relevance model to ${target}.`, { cause: error, details: { dir: target } });
  }
  await rm(previous, { recursive: true, force: true });
}

function checkMeta(value: unknown, dir: string): VaeMeta {
  if (typeof value !== 'object' || value === null) throw invalid(dir, 'meta.json is not an object');
  const meta = value as Partial<VaeMeta>;
  if (typeof meta.format !== 'number') throw invalid(dir, 'meta.json has no format');
  if (meta.format > VAE_FORMAT) {
    throw new AppError(
      'MODEL_INVALID',
      `The relevance model in ${dir} was saved by a newer version of this program (model format ${meta.format}, this version reads up to ${VAE_FORMAT}). Upgrade the program, or retrain the model with this version.`,
      { details: { dir, format: meta.format, supported: VAE_FORMAT } },
    );
  }
  if (meta.format !== VAE_FORMAT) throw invalid(dir, `unknown format ${meta.format}`);
  for (const key of ['inputDim', 'hiddenDim', 'latentDim'] as const) {
    const v = meta[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw invalid(dir, `meta.json has a bad ${key}`);
  }
  if (typeof meta.weightsSha256 !== 'string') throw invalid(dir, 'meta.json has no weights checksum');
  const hyper = meta.hyper;
  if (typeof hyper !== 'object' || hyper === null || !INPUT_TRANSFORMS.includes(hyper.inputTransform)) {
    throw invalid(dir, 'meta.json has bad hyperparameters');
  }
  if (hyper.latent !== meta.latentDim || hyper.hidden !== meta.hiddenDim) throw invalid(dir, 'meta.json dimensions disagree');
  return { ...meta, hyper: withLegacyDefaults(hyper) } as VaeMeta;
}

export async function loadVae(dir: string): Promise<VaeModel> {
  const target = path.resolve(dir);
  let metaText: string;
  let weights: Buffer;
  try {
    [metaText, weights] = await Promise.all([readFile(path.join(target, META_FILE), 'utf8'), readFile(path.join(target, WEIGHTS_FILE))]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new AppError('MODEL_MISSING', `No relevance model in ${target}. Train one first.`, { cause: error, details: { dir: target } });
    }
    throw invalid(target, 'its files cannot be read', error);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(metaText);
  } catch (error) {
    throw invalid(target, 'meta.json is not valid JSON', error);
  }
  const meta = checkMeta(parsed, target);
  if (sha256(weights) !== meta.weightsSha256) throw invalid(target, 'weights.bin checksum mismatch');
  const layout = weightLayout(meta);
  const total = layout.reduce((sum, [, size]) => sum + size, 0);
  if (weights.byteLength !== total * 4) throw invalid(target, `weights.bin holds ${weights.byteLength} bytes, expected ${total * 4}`);
  // Copied because a Buffer from readFile may sit at an offset that is not 4-byte aligned.
  const all = new Float32Array(total);
  new Uint8Array(all.buffer).set(weights);
  const arrays: Partial<VaeWeights> = {};
  let offset = 0;
  for (const [name, size] of layout) {
    arrays[name] = all.subarray(offset, offset + size);
    offset += size;
  }
  return new VaeModel(meta, arrays as VaeWeights);
}
