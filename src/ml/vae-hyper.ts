/**
 * The VAE's training settings: their meaning, defaults and the run they plan. Free of tfjs so that callers can plan
 * and validate without loading it.
 */
import { AppError } from '../errors.js';

export const INPUT_TRANSFORMS = ['l2', 'log1p', 'none'] as const;
export type InputTransform = (typeof INPUT_TRANSFORMS)[number];

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

/** `partial` over the defaults, checked: CONFIG_INVALID names every bad or unknown setting. */
export function resolveVaeHyper(partial: Partial<VaeHyperParams>): VaeHyperParams {
  // An explicit epoch count is run as given (tests, benchmarks, quick evaluations): minSteps lengthens only the
  // default one, unless it is given too.
  const hyper: VaeHyperParams = { ...DEFAULT_VAE_HYPER, ...(partial.epochs !== undefined ? { minSteps: 0 } : {}) };
  const problems: string[] = [];
  for (const [key, value] of Object.entries(partial)) {
    if (!Object.hasOwn(DEFAULT_VAE_HYPER, key)) problems.push(`unknown setting ${key}`);
    else if (value !== undefined) (hyper as Record<string, unknown>)[key] = value;
  }
  const int = (key: keyof VaeHyperParams, min: number): void => {
    const v = hyper[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) problems.push(`${key} must be an integer >= ${min}`);
  };
  const num = (key: keyof VaeHyperParams, min: number, max: number): void => {
    const v = hyper[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) problems.push(`${key} must be a number in [${min}, ${max}]`);
  };
  int('latent', 1);
  int('hidden', 1);
  int('epochs', 1);
  int('maxSteps', 1);
  int('batchSize', 1);
  int('minSteps', 0);
  int('seed', 0);
  num('learningRate', 1e-7, 1);
  num('beta', 0, 1e3);
  num('reconScale', 1e-6, 1e3);
  num('klWarmupFraction', 0, 1);
  num('freeBitsPerDim', 0, 1e3);
  num('heldOutFraction', 0, 0.5);
  num('neighbourWeight', 0, 1e6);
  num('neighbourTemperature', 1e-3, 10);
  num('timeBudgetSeconds', 1e-3, Number.MAX_SAFE_INTEGER);
  if (!INPUT_TRANSFORMS.includes(hyper.inputTransform)) problems.push(`inputTransform must be one of ${INPUT_TRANSFORMS.join(', ')}`);
  if (problems.length > 0) {
    throw new AppError('CONFIG_INVALID', `Invalid VAE training settings: ${problems.join('; ')}.`, { details: { problems } });
  }
  return hyper;
}
