/**
 * A linear index key (PCA, plain or whitened with shrinkage, or the learned whitening of learned-whitening.ts) in the
 * VAE's file format, so that saving, loading, the bulk encoding worker and the index build all serve it unchanged.
 * A linear map y = A·x is an exact two-layer ReLU
 * network: hidden = relu([A; −A]·x), y = [I, −I]·hidden, because relu(a) − relu(−a) = a.
 */
import { randomBytes } from 'node:crypto';
import { fitLearnedWhitening, type EditPairs, type LearnedWhiteningOptions, type LinearMap } from './learned-whitening.js';
import { fitPca } from './pca.js';
import { DEFAULT_VAE_HYPER } from './vae-hyper.js';
import { VAE_FORMAT, VaeModel, type VaeMeta, type VaeWeights } from './vae-model.js';

export type PcaKeyOptions = {
  components: number;
  /**
   * null: plain PCA. A number s: each axis divided by √(variance + s · mean variance), i.e. whitening shrunk
   * towards plain PCA (s = 0 is full whitening, large s approaches plain PCA up to a common scale).
   */
  shrinkage: number | null;
  seed: number;
};

const stamp = (now: Date): string => now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

export function pcaKeyId(options: PcaKeyOptions, now = new Date()): string {
  return `pca${options.components}${options.shrinkage === null ? '' : 'w'}-${stamp(now)}-${randomBytes(4).toString('hex')}`;
}

/** Fits PCA on `n` rows of `features` (row-major, n × dim) and returns it as an encoder whose μ is the projection. */
export function fitPcaKey(features: Float32Array, n: number, dim: number, options: PcaKeyOptions): VaeModel {
  const pca = fitPca(features, n, dim, Math.min(options.components, n - 1), options.seed);
  const l = pca.components;
  const meanVariance = pca.variances.reduce((a, b) => a + b, 0) / l;
  const scale = Float64Array.from(pca.variances, (v) => (options.shrinkage === null ? 1 : 1 / Math.sqrt(Math.max(v + options.shrinkage * meanVariance, 1e-12))));
  const map = new Float64Array(dim * l);
  for (let k = 0; k < dim; k++) for (let r = 0; r < l; r++) map[k * l + r] = pca.axes[r * dim + k] * scale[r];
  const whitened = options.shrinkage !== null;
  return linearKey({ mean: pca.mean, components: l, map }, dim, n, options.seed, {
    id: pcaKeyId(options),
    keyKind: whitened ? 'pca-whitened' : 'pca',
    ...(whitened ? { shrinkage: options.shrinkage! } : {}),
  });
}

export function lwKeyId(components: number, now = new Date()): string {
  return `lw${components}-${stamp(now)}-${randomBytes(4).toString('hex')}`;
}

/** The learned whitening (learned-whitening.ts) of `n` rows and their edit pairs, as an encoder. Its shrinkage is λ. */
export function fitLearnedWhiteningKey(features: Float32Array, n: number, dim: number, pairs: EditPairs, options: LearnedWhiteningOptions): VaeModel {
  const fitted = fitLearnedWhitening(features, n, dim, pairs, options);
  return linearKey(fitted, dim, n, options.seed, { id: lwKeyId(fitted.components), keyKind: 'learned-whitening', shrinkage: options.lambda });
}

/** y = mapᵀ·(unit(x) − mean) as the VAE format's two ReLU layers (see the top of this file). */
function linearKey(fitted: LinearMap, dim: number, n: number, seed: number, kind: Pick<VaeMeta, 'id' | 'keyKind' | 'shrinkage'>): VaeModel {
  const { mean, map, components: l } = fitted;
  const h = 2 * l;
  const encoderW = new Float32Array(dim * h);
  for (let k = 0; k < dim; k++) {
    for (let r = 0; r < l; r++) {
      const a = map[k * l + r];
      encoderW[k * h + r] = a;
      encoderW[k * h + l + r] = -a;
    }
  }
  const muW = new Float32Array(h * l);
  for (let r = 0; r < l; r++) {
    muW[r * l + r] = 1;
    muW[(l + r) * l + r] = -1;
  }
  const weights: VaeWeights = {
    // Both fits take unit-length rows centred on their mean: the 'l2' transform, then centring without scaling.
    inputMean: Float32Array.from(mean),
    inputStd: new Float32Array(dim).fill(1),
    encoderW,
    encoderB: new Float32Array(h),
    muW,
    muB: new Float32Array(l),
    // No variance and no decoder: a linear key is not a generative model. logVar = 0 means unit variance.
    logVarW: new Float32Array(h * l),
    logVarB: new Float32Array(l),
    decoderW: new Float32Array(l * h),
    decoderB: new Float32Array(h),
    outputW: new Float32Array(h * dim),
    outputB: new Float32Array(dim),
  };
  const meta: VaeMeta = {
    ...kind,
    created: new Date().toISOString(),
    trainingSize: n,
    hyper: { ...DEFAULT_VAE_HYPER, latent: l, hidden: h, inputTransform: 'l2', seed },
    loss: { final: 0, recon: 0, kl: 0 },
    activeUnits: l,
    inputDim: dim,
    latentDim: l,
    hiddenDim: h,
    seed,
    epochsTrained: 0,
    format: VAE_FORMAT,
  };
  return new VaeModel(meta, weights);
}

/** Key ids of linear keys name what they are (`pca64-…`, `pca64w-…`, `lw96-…`); a VAE's id is a bare timestamp. */
export function isLinearKeyId(id: string): boolean {
  return /^(pca|lw)\d/.test(id);
}

/** 'vae' for a trained VAE (and every model saved before linear keys existed). */
export function keyKindOf(model: VaeModel): NonNullable<VaeMeta['keyKind']> {
  return model.meta.keyKind ?? 'vae';
}
